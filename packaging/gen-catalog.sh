#!/bin/sh
# gen-catalog.sh DIR [SRC]: print the plugin catalog for the plugin binaries
# in DIR as JSON: name, kind, file and SHA-256 of every executable regular
# file, sorted by name. The kind comes from the source folder the binary was
# built from, SRC/<kind>s/<name>/ (SRC defaults to ./plugins): detectors,
# providers or vectorstores. The agent's plugin host launches a plugin only when its SHA-256
# matches this catalog; the package installs DIR and this file as
# /usr/lib/vigil/plugins/ and /usr/lib/vigil/plugins/catalog.json.
set -eu
dir=${1:?usage: gen-catalog.sh DIR [SRC]}
src=${2:-plugins}
printf '{\n  "version": 1,\n  "plugins": ['
sep=""
for f in $(find "$dir" -maxdepth 1 -type f -perm -u+x | LC_ALL=C sort); do
	name=$(basename "$f")
	sum=$(sha256sum "$f" | cut -d' ' -f1)
	kind=""
	for k in detector provider vectorstore; do
		if [ -d "$src/${k}s/$name" ]; then kind=$k; fi
	done
	if [ -z "$kind" ]; then
		echo "gen-catalog.sh: no $src/{detectors,providers,vectorstores}/$name folder: cannot tell the kind of $f" >&2
		exit 1
	fi
	printf '%s\n    {"name": "%s", "kind": "%s", "file": "%s", "sha256": "%s"}' "$sep" "$name" "$kind" "$name" "$sum"
	sep=","
done
if [ -n "$sep" ]; then printf '\n  '; fi
printf ']\n}\n'

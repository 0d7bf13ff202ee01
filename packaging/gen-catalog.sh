#!/bin/sh
# gen-catalog.sh DIR: print the plugin catalog for the plugin binaries in DIR
# as JSON: name, file and SHA-256 of every executable regular file, sorted
# by name. The agent's plugin host launches a plugin only when its SHA-256
# matches this catalog; the package installs DIR and this file as
# /usr/lib/vigil/plugins/ and /usr/lib/vigil/plugins/catalog.json.
set -eu
dir=${1:?usage: gen-catalog.sh DIR}
printf '{\n  "version": 1,\n  "plugins": ['
sep=""
for f in $(find "$dir" -maxdepth 1 -type f -perm -u+x | LC_ALL=C sort); do
	name=$(basename "$f")
	sum=$(sha256sum "$f" | cut -d' ' -f1)
	printf '%s\n    {"name": "%s", "file": "%s", "sha256": "%s"}' "$sep" "$name" "$name" "$sum"
	sep=","
done
if [ -n "$sep" ]; then printf '\n  '; fi
printf ']\n}\n'

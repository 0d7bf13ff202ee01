#!/bin/sh
# changelog.sh DEB_VERSION: prints packaging/debian/changelog for a package
# of version DEB_VERSION (the version dpkg will report). When the newest
# entry is for another version (a build between releases, or a release
# whose entry was not written), a generated entry for DEB_VERSION comes
# first, saying what the build is, so that the changelog a package installs
# always starts with its own version.
set -eu
version=${1:?usage: changelog.sh DEB_VERSION}
here=$(dirname "$0")
log="$here/debian/changelog"
top=$(sed -n '1s/^vigil (\([^)]*\)).*/\1/p' "$log")
if [ "$top" != "$version" ]; then
	rev=$(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
	# The commit's date, so that the same commit gives the same file.
	date=$(git -C "$here" log -1 --format=%cD 2>/dev/null || date -R)
	cat <<ENTRY
vigil ($version) unstable; urgency=medium

  * Build of revision $rev, after $top. This version has no
    entry of its own: the changes since $top are in the
    project's history.

 -- Vigil maintainers <dev@vigil.invalid>  $date

ENTRY
fi
cat "$log"

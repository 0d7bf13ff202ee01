#!/bin/sh
# test-deps.sh installs what `make test` needs when it is missing: Debian
# packages when run as root, otherwise it names what to install and fails.
# One line per need: `need CHECK-COMMAND PACKAGE`.
set -eu

missing=""
need() {
	if ! sh -c "$1" >/dev/null 2>&1; then
		missing="$missing $2"
	fi
}

need 'command -v systemd-analyze' systemd
need 'command -v promtool' prometheus
need 'command -v prometheus-alertmanager' prometheus-alertmanager
need '/usr/bin/python3 -c "import scipy"' python3-scipy
need 'command -v nft' nftables
need 'command -v ip' iproute2
need '/usr/bin/python3 -c "import grpc"' python3-grpcio
need '/usr/bin/python3 -c "import google.protobuf"' python3-protobuf
need '/usr/bin/python3 -c "import cryptography"' python3-cryptography
need 'command -v node' nodejs
need 'command -v npm' npm
if [ "$(id -u)" = 0 ]; then
	# Only the package install test (root only) uses these.
	need 'command -v lintian' lintian
	need 'command -v rpm' rpm
fi

if [ -z "$missing" ]; then
	echo "test-deps: everything the tests need is installed"
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: installing Debian packages:$missing"
	apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	echo "test-deps: installed:$missing"
else
	echo "test-deps: missing Debian packages:$missing (run: sudo apt-get install$missing)" >&2
	exit 1
fi

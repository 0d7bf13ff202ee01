#!/usr/bin/python3
"""Pack a Python plugin into one executable file for the Vigil agent.

    /usr/bin/python3 sdk/python/pack.py my_detector.py -o vigil-detector-mine

The result is a zipapp (PEP 441) holding the plugin as __main__, the
vigil_plugin SDK with its generated protobuf code, and any --add files or
folders, behind a `#!/usr/bin/python3` line. Because everything but the
Debian packages (python3-grpcio, python3-protobuf, python3-cryptography) is
inside that one file, the SHA-256 the agent pins covers all of the plugin's
own code: change a line and the agent refuses it until it is registered
again.
"""

import argparse
import os
import shutil
import sys
import tempfile
import zipapp

HERE = os.path.dirname(os.path.realpath(__file__))


def ignore(_dir, names):
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("plugin", help="the plugin's main module (a .py file that calls vigil_plugin.serve_*)")
    ap.add_argument("-o", "--output", required=True, help="the executable to write")
    ap.add_argument("--add", action="append", default=[], help="a module file or package folder to include (repeatable)")
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter for the #! line (default /usr/bin/python3)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(os.path.join(HERE, "vigil_plugin"), os.path.join(tmp, "vigil_plugin"), ignore=ignore)
        shutil.copy(args.plugin, os.path.join(tmp, "__main__.py"))
        for extra in args.add:
            dest = os.path.join(tmp, os.path.basename(os.path.normpath(extra)))
            if os.path.isdir(extra):
                shutil.copytree(extra, dest, ignore=ignore)
            else:
                shutil.copy(extra, dest)
        zipapp.create_archive(tmp, args.output, interpreter=args.python, compressed=True)
    os.chmod(args.output, 0o755)
    print("wrote %s" % args.output, file=sys.stderr)


if __name__ == "__main__":
    main()

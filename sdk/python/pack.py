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
import ast
import os
import shutil
import sys
import tempfile
import zipapp

HERE = os.path.dirname(os.path.realpath(__file__))


def ignore(_dir, names):
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")]


def check_source(path, added):
    """Compile the .py file at path and return its problems: a syntax
    error (file:line), and a top-level import of a module that sits beside
    it but is not packed (it imports here and fails, or imports something
    else, once packed). added holds the basenames packed with --add."""
    try:
        with open(path, "rb") as f:
            src = f.read()
        tree = ast.parse(src, filename=path)
    except SyntaxError as e:
        return ["%s:%s: %s: %s" % (path, e.lineno, type(e).__name__, e.msg)]
    problems = []
    here = os.path.dirname(os.path.abspath(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    for name in sorted(names - {"vigil_plugin"}):
        for cand in (name + ".py", name):
            full = os.path.join(here, cand)
            if cand in added or not os.path.exists(full):
                continue
            if cand == name and not os.path.isfile(os.path.join(full, "__init__.py")):
                continue  # a folder that is not a package
            problems.append("%s imports %s, which is beside it (%s) but not packed: add --add %s"
                            % (path, name, full, full))
            break
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("plugin", help="the plugin's main module (a .py file that calls vigil_plugin.serve_*)")
    ap.add_argument("-o", "--output", required=True, help="the executable to write")
    ap.add_argument("--add", action="append", default=[], help="a module file or package folder to include (repeatable)")
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter for the #! line (default /usr/bin/python3)")
    args = ap.parse_args(argv)

    for path in [args.plugin] + args.add:
        if not os.path.exists(path):
            sys.exit("pack.py: %s: no such file or folder" % path)
    added = {os.path.basename(os.path.normpath(a)) for a in args.add}
    problems = []
    for path in [args.plugin] + [a for a in args.add if os.path.isfile(a) and a.endswith(".py")]:
        problems += check_source(path, added)
    if problems:
        sys.exit("pack.py: nothing written:\n  " + "\n  ".join(problems))

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

#!/usr/bin/python3
"""onnx.checker over many model files in ONE process (starting Python per model is far too slow).

    /usr/bin/python3 check_models.py PATH [PATH ...]

Each PATH is a .onnx file or a directory searched recursively for *.onnx. Prints one JSON object
{file: null when the model passes check_model(full_check=True), else the first line of the error}.
"""
import json
import os
import sys

import onnx


def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                for n in sorted(names):
                    if n.endswith('.onnx'):
                        yield os.path.join(root, n)
        else:
            yield p


def check(path):
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        return None
    except Exception as e:  # the message is the result
        text = str(e).strip().splitlines()
        return f'{type(e).__name__}: {text[0] if text else ""}'


def main():
    results = {f: check(f) for f in files(sys.argv[1:])}
    json.dump(results, sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main())

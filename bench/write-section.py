#!/usr/bin/env python3
"""Replaces what is between a pair of markers in a markdown file.

    python3 bench/write-section.py NAME docs/benchmarks.md section.md

The file must hold exactly one "<!-- NAME:begin ... -->" ... "<!-- NAME:end -->"
pair; section.md is written between them (its own first and last lines are
expected to be those markers).
"""
import re
import sys

name, doc_path, section_path = sys.argv[1:4]
doc, section = open(doc_path).read(), open(section_path).read().strip()
pattern = r"<!-- " + re.escape(name) + r":begin.*?<!-- " + re.escape(name) + r":end -->"
new, n = re.subn(pattern, lambda m: section, doc, flags=re.S)
if n != 1:
    sys.exit(f"{doc_path} has no {name} markers")
open(doc_path, "w").write(new)

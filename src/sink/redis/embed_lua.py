#!/usr/bin/env python3
"""embed_lua.py: writes a C file that holds a Lua script as a string constant.

Usage: embed_lua.py INPUT.lua OUTPUT.c SYMBOL

The Redis sink keeps its script readable in apply.lua; the build turns it into
`const char SYMBOL[] = "...";` so the binary carries the exact text it loads with SCRIPT LOAD.
"""
import sys


def c_string_lines(text):
    for line in text.splitlines(keepends=True):
        escaped = line.replace('\\', '\\\\').replace('"', '\\"').replace('\t', '\\t')
        escaped = escaped.replace('\n', '\\n')
        yield '    "' + escaped + '"\n'


def main():
    src, dst, symbol = sys.argv[1:4]
    with open(src, encoding='utf-8') as f:
        text = f.read()
    with open(dst, 'w', encoding='utf-8') as out:
        out.write('/* Generated from %s by embed_lua.py: do not edit. */\n' % src.split('/')[-1])
        out.write('extern const char %s[];\n' % symbol)
        out.write('const char %s[] =\n' % symbol)
        out.writelines(c_string_lines(text))
        out.write('    "";\n')


if __name__ == '__main__':
    main()

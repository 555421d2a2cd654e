#!/bin/sh
# Debian's CPython 3.11 (the interpreter the images ship) without site-packages
# (-S) or user site (-s): a target imports only what its BUILD deps provide.
exec /usr/bin/python3.11 -S -s "$@"

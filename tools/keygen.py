"""Create a key file, or export a key's concrete arrays as JSON.

    python tools/keygen.py OUT.key                      # 256 random bits, mode 0600
    python tools/keygen.py OUT.key --password           # scrypt; password from $KEYPROTECT_PASSWORD or a prompt
    python tools/keygen.py OUT.key --legacy-seed 42     # published-code keys (weak; for reproducing papers)
    python tools/keygen.py --export KEY [ARRAYS.json] --method np --block-size 4
    python tools/keygen.py --fingerprint KEY

Exported arrays are the key itself: they are written with mode 0600 (also when
standard output is redirected to a file), and shown on a terminal with a warning.
"""
import argparse
import getpass
import json
import os
import stat
import sys

from mmseg_keyprotect.config import DEFAULT_BLOCK_SIZE, DEFAULT_METHOD
from mmseg_keyprotect.crypto.key_files import (
    export_arrays,
    load_key,
    write_legacy_key,
    write_password_key,
    write_private_json,
    write_random_key,
)
from mmseg_keyprotect.crypto.keys import LEGACY_DEFAULT_PASSWORD, shown_fingerprint
from mmseg_keyprotect.crypto.passwords import LEGACY_PASSWORD_ENV, PASSWORD_ENV, normalise_password
from mmseg_keyprotect.errors import KeyProtectError


def parse_args():
    parser = argparse.ArgumentParser(description='Create, inspect or export mmseg-keyprotect key files')
    parser.add_argument('output', nargs='?', help='key file to create (with --export: the arrays file to write)')
    parser.add_argument('--password', action='store_true',
                        help=f'derive the key from a password (read from ${PASSWORD_ENV} or a prompt) with scrypt')
    parser.add_argument('--legacy-seed', type=int,
                        help='write a published-code key from this integer seed (weak: the seed is the whole key)')
    parser.add_argument('--legacy-ffx-password', default=None,
                        help=f'FFX password of a legacy key, stored in the key file in plain text (default: '
                             f'${LEGACY_PASSWORD_ENV} or {LEGACY_DEFAULT_PASSWORD!r}, as in the published code)')
    parser.add_argument('--force', action='store_true', help='overwrite an existing key file')
    parser.add_argument('--export', metavar='KEY', help='print the concrete per-block arrays of KEY as JSON')
    parser.add_argument('--fingerprint', metavar='KEY', help='print the fingerprint of KEY')
    parser.add_argument('--method', default=DEFAULT_METHOD,
                        help=f'method or chain of --export, e.g. shuffle, np, ffx, ffx8, shuffle+np '
                             f'(default {DEFAULT_METHOD})')
    parser.add_argument('--block-size', type=int, default=DEFAULT_BLOCK_SIZE,
                        help=f'block size M of --export (default {DEFAULT_BLOCK_SIZE})')
    return parser.parse_args()


def read_new_password(confirm: bool = True) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        raise KeyProtectError(f'set {PASSWORD_ENV} or run interactively to be prompted for the password')
    password = getpass.getpass('New password: ')
    if confirm and normalise_password(getpass.getpass('Repeat password: ')) != normalise_password(password):
        raise KeyProtectError('the passwords differ')
    return password


def export(arrays: dict, output, overwrite: bool) -> None:
    """Write exported arrays privately: to ``output`` (mode 0600), or to standard output, made 0600 when it
    is a file and announced when it is a terminal."""
    if output:
        write_private_json(output, arrays, overwrite)
        print(f'wrote {output} (mode 600): these arrays are the key', file=sys.stderr)
        return
    text = json.dumps(arrays)
    descriptor = sys.stdout.fileno()
    if stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.fchmod(descriptor, 0o600)  # the shell created it with the umask: 0644 would show the key to everyone
        print('standard output is a file: made it mode 600, as these arrays are the key', file=sys.stderr)
    elif sys.stdout.isatty():
        print('warning: these arrays are the key; do not paste them anywhere', file=sys.stderr)
    print(text)


def main():
    args = parse_args()
    if args.export:
        export(export_arrays(load_key(args.export), args.method, args.block_size), args.output, args.force)
        return
    if args.fingerprint:
        print(f'key fingerprint: {shown_fingerprint(load_key(args.fingerprint))}')
        return
    if not args.output:
        raise SystemExit('keygen: give a key file to create, or --export/--fingerprint KEY (see --help)')
    if args.legacy_seed is not None:
        password = (args.legacy_ffx_password or os.environ.get(LEGACY_PASSWORD_ENV) or LEGACY_DEFAULT_PASSWORD)
        key = write_legacy_key(args.output, args.legacy_seed, password, overwrite=args.force)
        print('warning: a legacy key is only as strong as its seed; use it to reproduce published results only',
              file=sys.stderr)
    elif args.password:
        key = write_password_key(args.output, read_new_password(), overwrite=args.force)
    else:
        key = write_random_key(args.output, overwrite=args.force)
    print(f'wrote {args.output} (mode 600), fingerprint {shown_fingerprint(key)}')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'keygen: error: {error}')

"""Create a key file, or export a key's concrete arrays as JSON.

    python tools/keygen.py OUT.key                      # 256 random bits, mode 0600
    python tools/keygen.py OUT.key --password           # scrypt; password from $KEYPROTECT_PASSWORD or a prompt
    python tools/keygen.py OUT.key --legacy-seed 42     # published-code keys (weak; for reproducing papers)
    python tools/keygen.py --export KEY --method shuffle --block-size 4 > arrays.json
    python tools/keygen.py --fingerprint KEY [--method shuffle --block-size 4]
"""
import argparse
import getpass
import json
import os
import sys

from mmseg_keyprotect.crypto.keys import (
    LEGACY_DEFAULT_PASSWORD,
    LEGACY_PASSWORD_ENV,
    PASSWORD_ENV,
    export_arrays,
    load_key,
    write_legacy_key,
    write_password_key,
    write_random_key,
)
from mmseg_keyprotect.errors import KeyProtectError


def parse_args():
    parser = argparse.ArgumentParser(description='Create, inspect or export mmseg-keyprotect key files')
    parser.add_argument('output', nargs='?', help='key file to create')
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
    parser.add_argument('--method', default='shuffle', help='method or chain, e.g. shuffle, np, ffx, ffx8, shuffle+np')
    parser.add_argument('--block-size', type=int, default=4, help='block size M')
    return parser.parse_args()


def read_new_password(confirm: bool = True) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        raise KeyProtectError(f'set {PASSWORD_ENV} or run interactively to be prompted for the password')
    password = getpass.getpass('New password: ')
    if confirm and getpass.getpass('Repeat password: ') != password:
        raise KeyProtectError('the passwords differ')
    return password


def main():
    args = parse_args()
    if args.export:
        print(json.dumps(export_arrays(load_key(args.export), args.method, args.block_size)))
        return
    if args.fingerprint:
        key = load_key(args.fingerprint)
        print(f'key fingerprint: {key.fingerprint}')
        print(f'transform fingerprint ({args.method}, M = {args.block_size}): '
              f'{key.cipher(args.method, args.block_size).fingerprint}')
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
    print(f'wrote {args.output} (mode 600), fingerprint {key.fingerprint}')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'keygen: error: {error}')

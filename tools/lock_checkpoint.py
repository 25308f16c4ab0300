"""Lock a plain checkpoint under a key file, or unlock a locked one for export.

    python tools/lock_checkpoint.py IN.pth OUT.pth --key-file KEY [--force]
    python tools/lock_checkpoint.py IN.pth OUT.pth --key-file KEY --unlock [--force]

Locking takes any MMEngine checkpoint (a stock zoo model before protected
fine-tuning, an old run) and writes it encrypted at rest under the key
(AES-256-GCM, a sub-key of the key file). Unlocking writes a plain file that
anyone who copies it can use: do it only to export a model to a place that
must not hold the key.
"""
import argparse
import sys
from pathlib import Path

import torch

from mmseg_keyprotect.checkpoint import LockedCheckpointError, is_locked, load_locked_checkpoint, save_locked_checkpoint
from mmseg_keyprotect.checkpoint.locked import plain_dict
from mmseg_keyprotect.crypto import RunKey
from mmseg_keyprotect.errors import KeyProtectError


def main():
    parser = argparse.ArgumentParser(description='Lock or unlock a checkpoint with a key file')
    parser.add_argument('input', help='checkpoint to read')
    parser.add_argument('output', help='checkpoint to write')
    parser.add_argument('--key-file', help='key file (default: $KEYPROTECT_KEY_FILE)')
    parser.add_argument('--unlock', action='store_true', help='write a plain checkpoint (for export)')
    parser.add_argument('--force', action='store_true', help='replace an existing output')
    args = parser.parse_args()
    key = RunKey.load(args.key_file).key
    if not Path(args.input).is_file():
        raise LockedCheckpointError(f'{args.input} is not a file' if Path(args.input).exists()
                                    else f'{args.input} does not exist')
    output = Path(args.output)
    if output.exists() and not args.force:
        raise LockedCheckpointError(f'{output} exists; nothing was written (pass --force to replace it)')
    if args.unlock:
        checkpoint = load_locked_checkpoint(args.input, key, 'cpu')
        torch.save(plain_dict(checkpoint), output)
        print(f'warning: {output} is a plain checkpoint: whoever copies it holds the weights', file=sys.stderr)
    else:
        if is_locked(args.input):
            raise LockedCheckpointError(f'{args.input} is already locked')
        try:
            checkpoint = torch.load(args.input, map_location='cpu')
        except Exception as error:  # torch raises many kinds (pickle, zip, runtime) for a file that is no checkpoint
            raise LockedCheckpointError(f'{args.input} is not a checkpoint torch can read '
                                        f'({type(error).__name__}: {str(error).splitlines()[0][:200]})') from None
        save_locked_checkpoint(checkpoint, output, key)
    print(f'wrote {output} ({"plain" if args.unlock else "locked under " + key.source})')


if __name__ == '__main__':
    try:
        main()
    except (KeyProtectError, FileNotFoundError) as error:
        raise SystemExit(f'lock_checkpoint: error: {error}')

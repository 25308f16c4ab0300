"""The model zoo: list entries, locate and verify a checkpoint, run it with a key.

    python tools/zoo.py list
    python tools/zoo.py verify NAME [--search-dir DIR]
    python tools/zoo.py predict NAME --key-file KEY IMAGES --out-dir DIR [--search-dir DIR]
    python tools/zoo.py readme          # regenerate configs/<algo>/README.md from the metafiles

Besides the committed metafiles, the zoo reads local ones: --metafile, by default the one
tools/demo.py writes for the checkpoints it trained (work_dirs/demo/metafile.yaml).
"""
import argparse

from mmseg_keyprotect.apis import ProtectedInferencer
from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect.zoo import (
    config_path,
    find_entry,
    load_entries,
    locate_checkpoint,
    metafiles,
    verify_checkpoint,
    write_readme,
)

DEMO_METAFILE = 'work_dirs/demo/metafile.yaml'


def show(value):
    return '-' if value is None else f'{value:.2f}' if isinstance(value, float) else str(value)


def main():
    parser = argparse.ArgumentParser(description='mmseg-keyprotect model zoo')
    parser.add_argument('command', choices=['list', 'verify', 'predict', 'readme'])
    parser.add_argument('name', nargs='?')
    parser.add_argument('images', nargs='?')
    parser.add_argument('--key-file')
    parser.add_argument('--out-dir', default='zoo_predictions')
    parser.add_argument('--search-dir', action='append', default=[], help='where to look for checkpoint files')
    parser.add_argument('--metafile', action='append', default=None,
                        help=f'a local metafile to read besides the committed ones (default: {DEMO_METAFILE})')
    args = parser.parse_args()
    local = args.metafile if args.metafile is not None else [DEMO_METAFILE]
    if args.command == 'list':
        columns = ('Unprotected mIoU', 'mIoU', 'Plain mIoU', 'Wrong-key mIoU mean', 'Wrong-key mIoU max')
        print(f'{"name":<60} ' + ' '.join(f'{c:>19}' for c in columns) + '  status')
        for entry in load_entries(extra=local):
            metrics = (entry.get('Results') or [{}])[0].get('Metrics', {})
            print(f'{entry["Name"]:<60} ' + ' '.join(f'{show(metrics.get(c)):>19}' for c in columns)
                  + f'  {entry.get("Status", "trained")}')
        return
    if args.command == 'readme':
        for metafile in metafiles():
            if metafile.parent.parent.name == 'configs':
                print(f'wrote {write_readme(metafile)}')
        return
    if not args.name:
        raise SystemExit('zoo: give an entry name (see `python tools/zoo.py list`)')
    entry = find_entry(args.name, extra=local)
    checkpoint = locate_checkpoint(entry, args.search_dir)
    print(f'{checkpoint}: sha256 {verify_checkpoint(checkpoint, entry)} matches the zoo entry')
    if args.command == 'predict':
        if not args.images:
            raise SystemExit('zoo: predict needs IMAGES')
        inferencer = ProtectedInferencer(config_path(entry), str(checkpoint), key_file=args.key_file)
        inferencer(args.images, out_dir=args.out_dir)
        print(f'wrote predictions for {len(inferencer.input_names)} image(s) to {args.out_dir}')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'zoo: error: {error}')

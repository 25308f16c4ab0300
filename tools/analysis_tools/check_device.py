"""Check protected training on this machine's GPU (or CPU): encryption bit for bit, iteration time, memory.

    python tools/analysis_tools/check_device.py --device cuda [--results-file gpu.json]
    python tools/analysis_tools/check_device.py --device cpu --quick      # a smoke run in about a minute

Prints a Markdown report: whether on-device encryption equals the pipeline path for every method and
chain at M = 2, 4, 8, 16 (also under float16 and bfloat16 autocast), and seconds per training iteration
and peak memory of PSPNet-R50, DeepLabV3+-R50 and SegFormer-B0 at their stock crops, unprotected and
protected on each path. Nothing is downloaded; a random key is made for the run. Exits 1 when any
encryption differs.
"""
import argparse
import json
import sys
from pathlib import Path

from mmseg_keyprotect.apis.device_check import MODELS, check_device, report_markdown
from mmseg_keyprotect.crypto.ciphers import DEFAULT_BLOCK_SIZE, DEFAULT_METHOD
from mmseg_keyprotect.errors import KeyProtectError


def main() -> int:
    parser = argparse.ArgumentParser(description='Check protected training on a device')
    parser.add_argument('--device', default='cuda', help="'cuda', 'cuda:1' or 'cpu' (default cuda)")
    parser.add_argument('--quick', action='store_true', help='tiny sizes: a smoke run, not a measurement')
    parser.add_argument('--method', default=DEFAULT_METHOD, help='the setting timed (default %(default)s)')
    parser.add_argument('--block-size', type=int, default=DEFAULT_BLOCK_SIZE,
                        help='M of the setting timed (default %(default)s)')
    parser.add_argument('--rounds', type=int, help='alternating rounds of the timings (default 5; 2 with --quick)')
    parser.add_argument('--iterations', type=int, help='iterations per round (default 5; 1 with --quick)')
    parser.add_argument('--models', nargs='+', choices=list(MODELS), default=list(MODELS), help='models timed')
    parser.add_argument('--results-file', help='also write the report as JSON')
    args = parser.parse_args()
    report = check_device(args.device, args.quick, args.method, args.block_size, args.rounds, args.iterations,
                          args.models)
    report['command'] = ('python tools/analysis_tools/check_device.py ' + ' '.join(sys.argv[1:])).split(
        ' --results-file')[0]
    print(report_markdown(report))
    if args.results_file:
        Path(args.results_file).write_text(json.dumps(report, indent=2) + '\n')
    return 0 if report['all_identical'] else 1


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyProtectError as error:
        raise SystemExit(f'check_device: error: {error}')

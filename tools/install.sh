#!/usr/bin/env bash
# Set up mmseg-keyprotect from nothing: a virtual environment in the checkout (.venv) holding
# the pinned OpenMMLab stack, mmcv compiled with its CPU ops, and this package in develop mode.
#
# Idempotent: every step checks whether it is already done, so a second run takes seconds.
# The first run compiles mmcv 2.1.0 (about 15 minutes on 2 cores); pip caches the wheel.
#
# Environment:
#   VENV            the environment: created if it has no bin/python (default: <checkout>/.venv); an existing
#                   venv or conda env (VENV=$CONDA_PREFIX) is used as it is
#   PYTHON          interpreter to create it from (default: python3)
#   TORCH           torch to install: a pip requirement or a wheel file (default: torch==2.13.0, the CPU
#                   build), or "existing" to keep the torch the environment already has (a CUDA build)
#   MMCV_CUDA_OPS   1: also compile mmcv's CUDA ops (needs nvcc; PSPNet, DeepLabV3+ and SegFormer use none)
#   MAX_JOBS        parallel compile jobs for mmcv (default: number of cores)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
TORCH="${TORCH:-torch==$TORCH_VERSION}"
MMCV_VERSION="2.1.0"
MMCV_CUDA_OPS="${MMCV_CUDA_OPS:-0}"

step() { printf '\n[install] %s\n' "$*"; }
fail() { printf '\n[install] FAILED: %s\n' "$*" >&2; exit 1; }
trap 'fail "step \"${CURRENT_STEP:-?}\" exited with status $? (see the output above)"' ERR

CURRENT_STEP="virtual environment"
if [ ! -x "$VENV/bin/python" ]; then
    step "creating virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV" || fail "could not create a venv with $PYTHON (is python3-venv installed?)"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

installed() { "$PY" - "$@" <<'PYEOF'
import sys
from importlib import metadata
for requirement in sys.argv[1:]:
    name, _, version = requirement.partition('==')
    try:
        found = metadata.version(name)
    except metadata.PackageNotFoundError:
        sys.exit(1)
    if version and found.split('+')[0] != version:
        sys.exit(1)
PYEOF
}

CURRENT_STEP="build tools"
if ! installed ninja wheel || ! "$PY" -c 'import setuptools, sys; v = tuple(map(int, setuptools.__version__.split(".")[:2])); sys.exit(not ((77, 0) <= v < (81, 0)))'; then
    step "installing build tools (setuptools>=77,<81: mmcv and mmengine still import pkg_resources)"
    "${PIP[@]}" install "setuptools>=77,<81" wheel ninja
fi

CURRENT_STEP="torch"
if [ "$TORCH" = "existing" ]; then
    "$PY" -c 'import torch' 2>/dev/null || fail "TORCH=existing, but $PY has no torch"
elif [ "$TORCH" = "torch==$TORCH_VERSION" ]; then
    if ! installed "torch==$TORCH_VERSION"; then
        step "installing torch $TORCH_VERSION (CPU build)"
        "${PIP[@]}" install "torch==$TORCH_VERSION" || fail "torch==$TORCH_VERSION could not be installed"
    fi
else
    step "installing $TORCH"
    "${PIP[@]}" install "$TORCH" || fail "$TORCH could not be installed"
fi
TORCH_BUILD="$("$PY" -c 'import torch; print(torch.__version__, "CUDA " + torch.version.cuda if torch.version.cuda else "CPU")')"

CURRENT_STEP="opencv"
if ! installed opencv-python; then
    # Before mmcv, which would otherwise take the newest major release.
    step "installing opencv-python 4.x"
    "${PIP[@]}" install "opencv-python>=4.8,<5"
fi

CURRENT_STEP="mmcv"
if ! installed "mmcv==$MMCV_VERSION" || ! "$PY" -c 'import mmcv.ops' 2>/dev/null; then
    OPS="CPU ops"
    [ "$MMCV_CUDA_OPS" = "1" ] && OPS="CPU and CUDA ops"
    step "installing mmcv $MMCV_VERSION with compiled $OPS, against torch $TORCH_BUILD"
    step "  a first build compiles from source: about 15 minutes on 2 cores; later runs reuse pip's cached wheel"
    # pip caches the wheel by mmcv's source alone: one built against another torch would not load.
    CACHE=()
    [ "$TORCH" = "torch==$TORCH_VERSION" ] || CACHE=(--no-cache-dir)
    # An mmcv whose ops do not load was built against another torch: build it again.
    installed "mmcv==$MMCV_VERSION" && CACHE+=(--force-reinstall --no-deps)
    # mmseg 1.2.2 imports mmcv.ops at module level, so mmcv-lite cannot work; no CPU wheel exists.
    MMCV_WITH_OPS=1 FORCE_CUDA="$MMCV_CUDA_OPS" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "${PIP[@]}" install --no-build-isolation "${CACHE[@]}" --progress-bar on -v "mmcv==$MMCV_VERSION" 2>&1 \
        | grep --line-buffered -E '^\s*\[[0-9]+/[0-9]+\]|Successfully|Using cached|Building wheel|Created wheel|error|Error' \
        || true
    "$PY" -c 'import mmcv.ops' || fail "mmcv $MMCV_VERSION was installed but its compiled ops do not import"
fi

CURRENT_STEP="OpenMMLab stack"
if ! installed mmengine==0.10.7 mmsegmentation==1.2.2 ftfy regex pyffx cryptography pytest ruff hypothesis; then
    step "installing mmengine, mmsegmentation and the rest of the pinned stack"
    "${PIP[@]}" install -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
fi

CURRENT_STEP="mmseg-keyprotect"
if ! installed mmseg-keyprotect || ! "$PY" -c 'import mmseg_keyprotect, mmseg_keyprotect_experiments' 2>/dev/null; then
    step "installing mmseg-keyprotect and its experiments (tools/experiments) in develop mode"
    "${PIP[@]}" install --no-build-isolation --no-deps -e "$ROOT" -e "$ROOT/tools/experiments"
fi

CURRENT_STEP="import check"
"$PY" -c 'import mmseg_keyprotect, mmseg, mmcv, mmengine, torch; print(f"[install] ready: torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmseg {mmseg.__version__}, mmseg_keyprotect {mmseg_keyprotect.__version__}")'

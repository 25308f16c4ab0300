"""What a measurement ran on (processor, cores, accelerator, torch), and how it was made."""
import os
import platform
import time
from typing import Dict, Optional


def machine(device: Optional[str] = None) -> Dict:
    """The machine of a measurement; ``gpu`` names the CUDA device measured on (or the first one present),
    None when there is none."""
    import torch
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as info:
            cpu = next(line.split(':', 1)[1].strip() for line in info if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    gpu = None
    if torch.cuda.is_available():
        index = torch.device(device).index if device and str(device).startswith('cuda') else None
        gpu = torch.cuda.get_device_name(index or 0)
    return dict(cpu=cpu or platform.machine(), cores=os.cpu_count(), gpu=gpu, system=platform.platform(),
                torch=torch.__version__, torch_threads=torch.get_num_threads())


def describe(info: Dict) -> str:
    """``'NVIDIA H200'`` or ``'2-core AMD EPYC CPU'``: how the docs name a machine."""
    return info['gpu'] if info.get('gpu') else f'{info["cores"]}-core {info["cpu"]} CPU'


def provenance(command: str, device: Optional[str] = None) -> Dict:
    """The command, the date and the machine (the GPU measured on, if any) of a measurement."""
    return dict(command=command, date=time.strftime('%Y-%m-%d'), machine=machine(device))

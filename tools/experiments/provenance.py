"""Where and how a measurement was made, for the results files behind the docs."""
import time
from typing import Dict, Optional

from mmseg_keyprotect.utils import machine


def provenance(command: str, device: Optional[str] = None) -> Dict:
    """The command, the date and the machine (the GPU measured on, if any) of a measurement."""
    return dict(command=command, date=time.strftime('%Y-%m-%d'), machine=machine(device))

"""mmseg's ``PackSegInputs``, keeping the block-padding record that ``BlockwiseEncrypt`` writes."""
from mmseg.datasets.transforms import PackSegInputs as MMSegPackSegInputs
from mmseg.registry import TRANSFORMS

from .blockwise_encrypt import PADDING_META_KEY


@TRANSFORMS.register_module(name='PackSegInputs', force=True)
class PackSegInputs(MMSegPackSegInputs):
    """Pack the inputs as mmseg does, and keep ``padding_size`` whenever a transform recorded it.

    ``BlockwiseEncrypt`` pads images whose sides are not multiples of the block
    size and records the padding in ``padding_size``, which mmseg's segmentors
    crop off their predictions (``BaseSegmentor.postprocess_result``). mmseg's
    ``PackSegInputs`` keeps only the meta keys it is told to, so a config with
    one added ``BlockwiseEncrypt`` line would predict on the padded grid and
    stretch it over the image. Importing the plugin registers this class under
    mmseg's name; no mmseg transform writes ``padding_size``, so every other
    pipeline packs exactly as before.

    Added Keys (to the data sample's metainfo):

    - padding_size (tuple): ``(left, right, top, bottom)``, when the results
      carry it.
    """

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if PADDING_META_KEY in results and PADDING_META_KEY not in self.meta_keys:
            packed['data_samples'].set_metainfo({PADDING_META_KEY: results[PADDING_META_KEY]})
        return packed

"""`onmt_translate` batching the source in file order, as a server receives requests.

Run with OpenNMT-py's own python and `onmt_translate`'s options:

    /tmp/peers/onmt-py/bin/python benchmarks/onmt_translate_in_file_order.py \\
        -model M.pt -src test.de -output out.pieces -beam_size 5 -batch_size 32 -report_time

OpenNMT-py 3.5.1 reads up to 16,384 source lines, sorts them by length and
only then cuts batches (`DynamicDatasetIter.from_opt` in
`onmt/inputters/dynamic_iterator.py`), so `onmt_translate -batch_size 32` on
a file measures length-sorted batches. Here a bucket holds one batch, so each
batch is the next `-batch_size` lines of the file; the outputs come back in
file order either way.
"""

from onmt.bin.translate import main
from onmt.constants import CorpusTask
from onmt.inputters import dynamic_iterator

_sorted_init = dynamic_iterator.DynamicDatasetIter.__init__


def _file_order_init(self, *args, **kwargs):
    _sorted_init(self, *args, **kwargs)
    if self.task == CorpusTask.INFER:
        self.bucket_size = self.batch_size


dynamic_iterator.DynamicDatasetIter.__init__ = _file_order_init

if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Cut the Fashion-MNIST subset shipped in data/fashion-mnist-subset from
Debian's dataset-fashion-mnist (MIT-licensed, Zalando Research): the first
N_TRAIN training and N_TEST test examples, as gzip'd IDX files.
Usage: tools/make_demo_subset.py [SRC_DIR] [DST_DIR]"""
import gzip, sys, os

N_TRAIN, N_TEST = 6000, 1000
src = sys.argv[1] if len(sys.argv) > 1 else '/usr/share/datasets/fashion-mnist'
dst = sys.argv[2] if len(sys.argv) > 2 else 'data/fashion-mnist-subset'
os.makedirs(dst, exist_ok=True)
for split, n in (('train', N_TRAIN), ('t10k', N_TEST)):
    for kind in ('images-idx3', 'labels-idx1'):
        name = f'{split}-{kind}-ubyte.gz'
        with gzip.open(os.path.join(src, name), 'rb') as f:
            data = f.read()
        nd = data[3]
        dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
        item = 1
        for d in dims[1:]:
            item *= d
        head = data[:4] + n.to_bytes(4, 'big') + data[8:4 + 4 * nd]
        body = data[4 + 4 * nd:4 + 4 * nd + n * item]
        # mtime=0: byte-identical output on every run
        with open(os.path.join(dst, name), 'wb') as raw:
            with gzip.GzipFile(fileobj=raw, mode='wb', mtime=0, compresslevel=9) as g:
                g.write(head + body)

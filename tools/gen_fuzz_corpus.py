#!/usr/bin/env python3
"""Write the seed corpora of the libFuzzer targets (fuzz/corpus/NAME/): small,
valid (and a few nearly valid) inputs of each reader. Plain python3 (no torch);
reproducible (gzip mtime 0). Run from the repository root:
    python3 tools/gen_fuzz_corpus.py
The bAbI seeds also use a file made by `cortex babi gen --n 3 --seed 1` when
build/cortex exists. See fuzz/README.md."""
import gzip, io, json, os, shutil, struct, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(C, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    b = io.BytesIO()
    with gzip.GzipFile(fileobj=b, mode="wb", mtime=0) as f:
        f.write(data)
    return b.getvalue()


# ---- safetensors
def st(tensors, meta=None):
    hdr, buf = {}, b""
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(buf), len(buf) + len(raw)]}
        buf += raw
    if meta is not None:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + buf


put("safetensors", "small", st([("w", "F32", [2, 3], struct.pack("<6f", *range(6))),
                                 ("b", "I64", [2], struct.pack("<2q", -1, 7))], {"cortex.arch": "mlp", "k": "v"}))
put("safetensors", "dtypes", st([("h", "F16", [2], struct.pack("<2e", 1.5, -2)),
                                  ("bf", "BF16", [1], b"\x80\x3f"), ("d", "F64", [1], struct.pack("<d", 3.25)),
                                  ("m", "BOOL", [3], b"\x00\x01\x01"), ("u", "U8", [2], b"\x05\xff"),
                                  ("i", "I32", [1, 1], struct.pack("<i", -5)), ("e", "F32", [0, 4], b"")]))
put("safetensors", "empty", st([]))
put("safetensors", "vocab", st([("chars", "I32", [3], struct.pack("<3i", -1, 97, 98)),
                                 ("counts", "I64", [3], struct.pack("<3q", 0, 5, 2))],
                                {"format": "cortex-char-vocab", "unk": "0"}))


# ---- IDX: first byte = mode (bit 0: the target gzips the rest; bits 1-7: max_items)
def idx(code, dims, payload):
    return struct.pack(">BBBB", 0, 0, code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + payload


imgs = idx(0x08, [3, 4, 4], bytes(range(48)))
labels = idx(0x08, [5], bytes([0, 1, 2, 9, 3]))
put("idx", "u8_images", b"\x00" + imgs)
put("idx", "u8_labels", b"\x00" + labels)
put("idx", "u8_images_gz", b"\x00" + gz(imgs))
put("idx", "u8_images_zlib_mode", b"\x01" + imgs)
put("idx", "max_items_2", b"\x04" + imgs)
put("idx", "i8", b"\x00" + idx(0x09, [2, 2], bytes([1, 255, 3, 128])))
put("idx", "i16_labels", b"\x00" + idx(0x0B, [3], struct.pack(">3h", 1, -2, 300)))
put("idx", "i32", b"\x01" + idx(0x0C, [2, 2], struct.pack(">4i", 1, -2, 3, 2**31 - 1)))
put("idx", "f32", b"\x00" + idx(0x0D, [1, 3], struct.pack(">3f", 0.5, -1, 1e30)))
put("idx", "f64_gz", b"\x00" + gz(idx(0x0E, [2, 1], struct.pack(">2d", 0.25, -8))))
fm = os.path.join(ROOT, "data", "fashion-mnist-subset", "t10k-images-idx3-ubyte.gz")
if os.path.exists(fm):
    with gzip.open(fm) as f:
        raw = f.read(16 + 2 * 784)
    put("idx", "fashion_2_gz", b"\x00" + gz(raw[:4] + struct.pack(">I", 2) + raw[8:]))

# ---- CSV
put("csv", "header", "x,y,label\n0.5,1,0\n-2e3,3.25,1\n")
put("csv", "no_header_crlf", "1,2,3\r\n4,5,6\r\n")
put("csv", "semicolon_quotes", 'a;"b ""q""";c\n1;"2";3\n\n4; 5 ;6')
put("csv", "tabs", "1\t2\n3\t4\n")
put("csv", "one_column", "v\n1\n2\n3\n")
put("csv", "specials", "a,b\ninf,-0\n1e308,nan\n")

# ---- .net
os.makedirs(os.path.join(C, "netdef"), exist_ok=True)
for f in sorted(os.listdir(os.path.join(ROOT, "models"))):
    if f.endswith(".net"):
        shutil.copy(os.path.join(ROOT, "models", f), os.path.join(C, "netdef", f))
put("netdef", "all_kinds_1", "input 3 16 16\nconv2d out=8 k=3 s=2 p=1\nbatchnorm\nrelu\nmaxpool2d k=2\n"
    "flatten\ndropout p=0.3\nlinear out=5 bias=0\n")
put("netdef", "all_kinds_2", "input 4 10\nconv1d out=6 k=3 d=2 g=2 bias=0\nbatchnorm\nlayernorm dims=2 eps=1e-3\ngelu\n")
put("netdef", "all_kinds_3", "input 2 6 6 6\nconv3d out=4 k=3 p=1\nmaxpool3d k=2\navgpool3d k=1\nelu alpha=0.5\n")
put("netdef", "all_kinds_4", "input 4 5 5\nconvt2d out=2 k=3 s=2 p=1 op=1\nupsample scale=1.5 mode=bilinear align=1\n"
    "tanh\nadaptiveavgpool2d h=2 w=3\nglobalavgpool\nsigmoid\n")
put("netdef", "all_kinds_5", "input 3 8 8\nconv2d name=a out=4 k=3 p=1\nconv2d name=b out=5 k=1 from=input\n"
    "concat from=a,b,input\nadd name=z from=concat1,concat1\nleaky_relu slope=0.2\nsoftplus\nidentity\n"
    "avgpool2d k=3 s=2 p=1 # comment\n")

# ---- text (char-LM corpora)
kjv = os.path.join(ROOT, "data", "text", "kjv_genesis_ruth_jonah.txt")
with open(kjv, "rb") as f:
    put("text", "kjv_head", f.read(1500))
put("text", "utf8", "na\u00efve caf\u00e9 \u2014 \u65e5\u672c \U0001F600\n\ufeffBOM\n")
put("text", "one_char", "a")

# ---- bAbI: first byte = mode (bit 0: second parse with unknown words as errors)
story = ("1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary? \tbathroom\t1\n"
         "4 Daniel went back to the hallway.\n5 Where is Daniel? \thallway\t4\n"
         "1 Sandra picked up the apple there.\n2 Sandra dropped the apple.\n3 What is Sandra carrying? \tnothing\t1 2\n"
         "4 Is Sandra in the garden? \tyes\t1\n5 What are they carrying? \tapple,football\t1\n")
put("babi", "task_mix", b"\x00" + story.encode())
put("babi", "task_mix_strict", b"\x03" + story.encode())
cortex = os.path.join(ROOT, "build", "cortex")
if os.path.exists(cortex):
    out = "/tmp/cx_fuzz_babi_seed.txt"
    subprocess.run([cortex, "babi", "gen", "--out", out, "--n", "3", "--seed", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    with open(out, "rb") as f:
        put("babi", "gen_task1", b"\x81" + f.read())
    os.remove(out)

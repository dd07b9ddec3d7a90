"""A visual-search array for bottom-up saliency (Itti, Koch & Niebur 1998;
Treisman's pop-out): on a dark grey field, a 6 x 6 grid of green bars tilted
45 degrees, one red bar (it differs in colour only) and one green bar tilted
-45 degrees (it differs in orientation only), each cell jittered.

    python3 tools/make_popout_png.py [OUT.png]   (default data/images/popout.png)

Standard library only (zlib + struct write the PNG). `cortex viz itti
data/images/popout.png` (docs/img/itti_popout.png): the colour conspicuity map
peaks at the red bar, the orientation map at the odd bar, and the saliency
map, where N(.) favours the map with one strong peak, at the odd bar.
"""
import math
import os
import random
import struct
import sys
import zlib

W = H = 240
N = 6


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "data", "images", "popout.png")
    rnd = random.Random(7)
    px = [[(40, 40, 40) for _ in range(W)] for _ in range(H)]
    cell = W // N
    odd_color, odd_orient = (1, 4), (4, 1)
    for gy in range(N):
        for gx in range(N):
            cy = gy * cell + cell // 2 + rnd.randint(-4, 4)
            cx = gx * cell + cell // 2 + rnd.randint(-4, 4)
            col = (220, 40, 40) if (gy, gx) == odd_color else (40, 200, 40)
            ang = -45 if (gy, gx) == odd_orient else 45
            ca, sa = math.cos(math.radians(ang)), math.sin(math.radians(ang))
            for y in range(cy - 16, cy + 17):
                for x in range(cx - 16, cx + 17):
                    u = (x - cx) * ca + (y - cy) * sa    # along the bar
                    v = -(x - cx) * sa + (y - cy) * ca   # across it
                    if abs(u) <= 13 and abs(v) <= 3 and 0 <= x < W and 0 <= y < H:
                        px[y][x] = col
    raw = b"".join(b"\x00" + bytes(c for p in row for c in p) for row in px)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(out + ".tmp", "wb") as f:
        f.write(png)
    os.replace(out + ".tmp", out)
    print(f"wrote {out} ({len(png)} bytes): red bar at grid row 1 col 4, -45 degree bar at row 4 col 1")


if __name__ == "__main__":
    main()

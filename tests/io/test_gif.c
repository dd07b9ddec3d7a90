/* Recordings: an animated GIF of a CartPole episode read back with giflib
 * (frame count, size, delay, every pixel of some frames), a frame of more
 * than 256 colours through the fixed colour cube, errors that leave no
 * file (unwritable path, a directory in the way, abort, no frames), and
 * the PNG film strip read back with libpng. */
#include <dirent.h>
#include <gif_lib.h>
#include <png.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cortex/env.h>
#include "test.h"

static char dir[256];

static void mkpath(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static int files_in_dir(void) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* pixel (x, y) of image k of a slurped GIF */
static const GifColorType *gif_px(const GifFileType *g, int k, int x, int y) {
    const SavedImage *im = &g->SavedImages[k];
    const ColorMapObject *m = im->ImageDesc.ColorMap ? im->ImageDesc.ColorMap : g->SColorMap;
    return &m->Colors[im->RasterBits[(size_t)y * im->ImageDesc.Width + x]];
}

static void cartpole_episode_round_trips(void) {
    char path[512];
    mkpath(path, sizeof path, "cartpole.gif");
    cx_env *e = cx_env_make("cartpole");
    cx_env_seed(e, 4);
    float obs[4];
    cx_env_reset(e, obs);
    int w, h;
    cx_env_render(e, &w, &h);
    cx_gif *g;
    CHECK(cx_gif_open(&g, path, w, h, 5) == CX_OK);
    uint8_t *keep[3] = {malloc((size_t)w * h * 3), malloc((size_t)w * h * 3), malloc((size_t)w * h * 3)};
    int n = 0;
    cx_step_result r;
    do {
        const uint8_t *f = cx_env_render(e, NULL, NULL);
        CHECK(cx_gif_add(g, f) == CX_OK);
        if (n == 0) memcpy(keep[0], f, (size_t)w * h * 3);
        if (n == 5) memcpy(keep[1], f, (size_t)w * h * 3);
        memcpy(keep[2], f, (size_t)w * h * 3);
        n++;
        r = cx_env_step(e, (n / 4) % 2, obs);
    } while (!r.terminated && !r.truncated);
    CHECK(n > 8 && cx_gif_frames(g) == n);
    CHECK(!exists(path)); /* nothing at <path> before the commit */
    CHECK(cx_gif_close(g) == CX_OK);
    CHECK(exists(path) && files_in_dir() == 1);

    int err = 0;
    GifFileType *in = DGifOpenFileName(path, &err);
    CHECK(in != NULL);
    if (in) {
        CHECK(DGifSlurp(in) == GIF_OK);
        CHECK(in->ImageCount == n && in->SWidth == w && in->SHeight == h);
        GraphicsControlBlock gcb;
        CHECK(DGifSavedExtensionToGCB(in, 1, &gcb) == GIF_OK && gcb.DelayTime == 5);
        const int ks[3] = {0, 5, n - 1};
        int bad = 0;
        for (int j = 0; j < 3; j++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    const GifColorType *c = gif_px(in, ks[j], x, y);
                    const uint8_t *o = keep[j] + ((size_t)y * w + x) * 3;
                    bad += c->Red != o[0] || c->Green != o[1] || c->Blue != o[2];
                }
        CHECK(bad == 0);
        /* a few known colours: white sky, the black track, the cart */
        const GifColorType *sky = gif_px(in, 0, 2, 2), *track = gif_px(in, 0, 2, 150);
        CHECK(sky->Red == 255 && sky->Green == 255 && sky->Blue == 255);
        CHECK(track->Red == 0 && track->Green == 0 && track->Blue == 0);
        const GifColorType *cart = gif_px(in, 0, w / 2, 155);
        CHECK(cart->Red == 30 && cart->Green == 30 && cart->Blue == 30);
        DGifCloseFile(in, &err);
    }
    for (int j = 0; j < 3; j++) free(keep[j]);
    cx_env_free(e);
    remove(path);
}

/* 512 colours: mapped to the 6x6x6 cube, each channel within 255/10. */
static void many_colours_use_the_cube(void) {
    char path[512];
    mkpath(path, sizeof path, "grad.gif");
    enum { W = 32, H = 16 };
    uint8_t img[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = img + (y * W + x) * 3;
            p[0] = (uint8_t)(x * 8);
            p[1] = (uint8_t)(y * 16);
            p[2] = (uint8_t)((x + y) * 5);
        }
    cx_gif *g;
    CHECK(cx_gif_open(&g, path, W, H, 10) == CX_OK);
    CHECK(cx_gif_add(g, img) == CX_OK);
    CHECK(cx_gif_close(g) == CX_OK);
    int err = 0, worst = 0;
    GifFileType *in = DGifOpenFileName(path, &err);
    CHECK(in && DGifSlurp(in) == GIF_OK && in->ImageCount == 1);
    if (in) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const GifColorType *c = gif_px(in, 0, x, y);
                const uint8_t *o = img + (y * W + x) * 3;
                int d[3] = {abs(c->Red - o[0]), abs(c->Green - o[1]), abs(c->Blue - o[2])};
                for (int k = 0; k < 3; k++) worst = d[k] > worst ? d[k] : worst;
            }
        DGifCloseFile(in, &err);
    }
    CHECK(worst <= 26 && worst > 0);
    remove(path);
}

static void errors_leave_no_file(void) {
    uint8_t px[4 * 4 * 3] = {0};
    cx_gif *g = (cx_gif *)1;
    CHECK(cx_gif_open(&g, "/nonexistent-cortex-dir/out.gif", 4, 4, 1) == CX_ERR_IO && g == NULL);
    CHECK(strstr(cx_last_error(), "/nonexistent-cortex-dir/out.gif"));
    CHECK(!exists("/nonexistent-cortex-dir"));
    char path[512];
    mkpath(path, sizeof path, "x.gif");
    CHECK(cx_gif_open(&g, path, 0, 4, 1) == CX_ERR_ARG && strstr(cx_last_error(), "size 0x4"));
    CHECK(cx_gif_open(&g, path, 4, 4, -1) == CX_ERR_ARG && strstr(cx_last_error(), "delay -1"));
    /* no frames: an error, no file */
    CHECK(cx_gif_open(&g, path, 4, 4, 1) == CX_OK);
    CHECK(cx_gif_close(g) == CX_ERR_ARG && strstr(cx_last_error(), "no frames"));
    CHECK(files_in_dir() == 0);
    /* abort after frames: no file */
    CHECK(cx_gif_open(&g, path, 4, 4, 1) == CX_OK);
    CHECK(cx_gif_add(g, px) == CX_OK);
    cx_gif_abort(g);
    CHECK(files_in_dir() == 0);
    /* a NULL frame: reported again by close, which leaves no file */
    CHECK(cx_gif_open(&g, path, 4, 4, 1) == CX_OK);
    CHECK(cx_gif_add(g, NULL) == CX_ERR_ARG);
    CHECK(cx_gif_add(g, px) == CX_ERR_ARG);
    CHECK(cx_gif_close(g) == CX_ERR_ARG);
    CHECK(files_in_dir() == 0);
    /* a directory where the file should go: the rename fails, nothing is left */
    char sub[512];
    mkpath(sub, sizeof sub, "adir");
    CHECK(mkdir(sub, 0755) == 0);
    CHECK(cx_gif_open(&g, sub, 4, 4, 1) == CX_OK);
    CHECK(cx_gif_add(g, px) == CX_OK);
    CHECK(cx_gif_close(g) == CX_ERR_IO && strstr(cx_last_error(), "adir"));
    CHECK(files_in_dir() == 1);
    rmdir(sub);
}

static void png_strip_has_grey_gaps(void) {
    char path[512];
    mkpath(path, sizeof path, "strip.png");
    enum { W = 4, H = 3 };
    uint8_t f[3][W * H * 3];
    const uint8_t col[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < W * H; i++) memcpy(f[k] + i * 3, col[k], 3);
    const uint8_t *frames[3] = {f[0], f[1], f[2]};
    CHECK(cx_png_write_strip(path, frames, 3, W, H, 2) == CX_OK);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    CHECK(png_image_begin_read_from_file(&im, path));
    CHECK(im.width == 9 && im.height == 7);
    im.format = PNG_FORMAT_RGB;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(im));
    CHECK(png_image_finish_read(&im, NULL, buf, 0, NULL));
#define PX(x, y) (buf + ((y) * 9 + (x)) * 3)
    CHECK(PX(0, 0)[0] == 255 && PX(3, 2)[0] == 255);               /* frame 0, top left */
    CHECK(PX(4, 0)[0] == 160 && PX(4, 0)[1] == 160);               /* the vertical gap */
    CHECK(PX(5, 0)[1] == 255 && PX(8, 2)[1] == 255 && PX(5, 0)[0] == 0); /* frame 1 */
    CHECK(PX(0, 3)[2] == 160 && PX(0, 4)[2] == 255 && PX(3, 6)[2] == 255); /* gap row, frame 2 */
    CHECK(PX(6, 5)[0] == 160 && PX(6, 5)[2] == 160);               /* the empty cell */
#undef PX
    free(buf);
    remove(path);
    CHECK(cx_png_write_strip(path, frames, 0, W, H, 2) == CX_ERR_ARG && strstr(cx_last_error(), "0 frames"));
    const uint8_t *holes[2] = {f[0], NULL};
    CHECK(cx_png_write_strip(path, holes, 2, W, H, 2) == CX_ERR_ARG && strstr(cx_last_error(), "frame 1 is NULL"));
    CHECK(files_in_dir() == 0);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/cortex_test_gif_%d", (int)getpid());
    mkdir(dir, 0755);
    RUN(cartpole_episode_round_trips);
    RUN(many_colours_use_the_cube);
    RUN(errors_leave_no_file);
    RUN(png_strip_has_grey_gaps);
    rmdir(dir);
    TEST_END();
}

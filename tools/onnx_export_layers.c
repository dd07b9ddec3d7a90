/* onnx_export_layers.c -- the layer kinds that `cortex onnx run` cannot run
 * back (GELU's Erf, LayerNormalization, Resize, ConvTranspose) and the other
 * conv / pool ranks, exported for a check in onnxruntime: for each small
 * network it writes NAME.onnx, an input NAME_x.pb [3, ...] and Cortex's
 * forward NAME_y.pb (evaluation mode) in the current directory.
 *
 *   make lib && B=$(make -s print-variant) && W=$PWD
 *   cc -std=c11 -Iinclude tools/onnx_export_layers.c $B/libcortex.a -lm -fopenmp $(tools/find_openblas.sh cc) \
 *      -lz -lpng16 -lgif -lprotobuf-c -o /tmp/oel
 *   cd /tmp && ./oel && for n in gelu_ln up_nearest up_bilinear up_bilinear_align convt conv1d conv3d sum3; do
 *       node $W/tools/ort_run.js $n.onnx --input ${n}_x.pb --compare ${n}_y.pb --limit-print 0; done
 */
#include <cortex.h>
#include <stdio.h>
#include <string.h>
static const char *nets[][2] = {
  {"gelu_ln", "input 4 6 6\nconv2d out=3 k=3\ngelu\nlayernorm dims=2\nglobalavgpool\nflatten\nlinear out=2\n"},
  {"up_nearest", "input 2 5 5\nupsample scale=2\nconv2d out=3 k=3\nflatten\nlinear out=3\n"},
  {"up_bilinear", "input 2 5 5\nupsample scale=2 mode=bilinear\nconv2d out=3 k=3\nflatten\nlinear out=3\n"},
  {"up_bilinear_align", "input 2 5 5\nupsample scale=2 mode=bilinear align=1\nflatten\nlinear out=3\n"},
  {"convt", "input 3 5 5\nconvt2d out=4 k=3 s=2 p=1 op=1\nrelu\nadaptiveavgpool2d h=5 w=5\nflatten\nlinear out=3\n"},
  {"conv1d", "input 3 16\nconv1d out=4 k=3 d=2 p=1\nelu\nlinear out=5\nsoftplus\nflatten\nlinear out=2\n"},
  {"conv3d", "input 2 6 6 6\nconv3d out=3 k=3 p=1\nmaxpool3d k=2\navgpool3d k=3 s=1 p=1\nflatten\nlinear out=2\n"},
  {"sum3", "input 2 6 6\nconv2d name=a out=2 k=1\nconv2d name=b out=2 k=3 p=1 from=input\nconv2d name=c out=2 k=5 p=2 from=input\nadd from=a,b,c\nconcat from=a,b\nglobalavgpool\nflatten\nlinear out=2\n"},
};
int main(void) {
  cx_seed(5);
  for (unsigned i = 0; i < sizeof nets / sizeof *nets; i++) {
    cx_module *net;
    if (cx_net_parse(nets[i][1], nets[i][0], &net)) { printf("%s\n", cx_last_error()); return 1; }
    char p[256];
    snprintf(p, sizeof p, "%s.onnx", nets[i][0]);
    if (cx_onnx_export(net, p, NULL)) { printf("%s: %s\n", nets[i][0], cx_last_error()); continue; }
    int s[CX_MAX_DIMS + 1] = {3};
    int nd = cx_net_input_shape(net, s + 1);
    cx_tensor *x = cx_randn(s, nd + 1, 0, 1);
    cx_set_training(false);
    cx_tensor *y = cx_module_forward(net, x);
    snprintf(p, sizeof p, "%s_x.pb", nets[i][0]); cx_onnx_write_tensor(p, x);
    snprintf(p, sizeof p, "%s_y.pb", nets[i][0]); cx_onnx_write_tensor(p, y);
    cx_module_free(net);
  }
  return 0;
}

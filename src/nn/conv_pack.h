/* Packed-weight cache of the direct convolution (internal; src/nn/conv.c).
 *
 * The direct convolution repacks each weight into register-tile order on
 * every call; at batch 1 of a small network that is a tenth of the run.
 * An inference runner whose weights do not change between calls (the ONNX
 * runner's no-grad plan, src/io/onnx_opt.c) owns a cache and makes it the
 * calling thread's current one around a run: forward convolutions whose
 * weight is a persistent tensor (not an arena one, whose memory is reused)
 * then take the packed copy from the cache, made on first use. The owner
 * clears the cache whenever the weights may have changed. Not used in grad
 * mode. */
#ifndef CX_CONV_PACK_H
#define CX_CONV_PACK_H

typedef struct cx_conv_pack cx_conv_pack;

cx_conv_pack *cx_conv_pack_new(void);
void cx_conv_pack_clear(cx_conv_pack *c); /* the weights may have changed */
void cx_conv_pack_free(cx_conv_pack *c);  /* NULL is fine */
/* The calling thread's current cache (NULL: none); returns the previous one. */
cx_conv_pack *cx_conv_pack_use(cx_conv_pack *c);

#endif

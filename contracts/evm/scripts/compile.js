#!/usr/bin/env node
// Compiles contracts/evm/sol/*.sol with solcjs (standard JSON) and writes
// one artifact per contract, { "abi": [...], "bytecode": "0x..",
// "deployedBytecode": "0x.." }, into the directory given as argv[2]
// (default: contracts/evm/out). Exits non-zero on any compiler error.
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const root = path.resolve(__dirname, '..');
const srcDir = path.join(root, 'sol');
const outDir = path.resolve(process.argv[2] || path.join(root, 'out'));

const sources = {};
for (const file of fs.readdirSync(srcDir).sort()) {
  if (file.endsWith('.sol')) {
    sources[file] = { content: fs.readFileSync(path.join(srcDir, file), 'utf8') };
  }
}

const input = {
  language: 'Solidity',
  sources,
  settings: {
    evmVersion: 'prague',
    optimizer: { enabled: true, runs: 200 },
    outputSelection: {
      '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
    },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const err of output.errors || []) {
  const text = err.formattedMessage || err.message;
  if (err.severity === 'error') {
    failed = true;
    console.error(text);
  } else {
    console.warn(text);
  }
}
if (failed) {
  process.exit(1);
}

fs.mkdirSync(outDir, { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: `solc ${solc.version()}`,
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + '\n');
  }
}
console.log(`compiled ${Object.keys(sources).length} sources with solc ${solc.version()} into ${outDir}`);

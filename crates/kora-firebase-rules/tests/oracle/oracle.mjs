// The oracle of tests/targaryen.rs: evaluates a batch of cases with targaryen, an
// independent implementation of Firebase Realtime Database rules.
//
//   node oracle.mjs cases.json > answers.json
//
// cases.json: [{rules, data, auth, now, op}], op being {kind: "read", path, query?},
// {kind: "set", path, value} or {kind: "update", path, patch}.
// answers: one per case, {valid, error?, allowed?, info?, tags}.
//
// `tags` name the places targaryen is known to differ from Firebase (ORACLE.md) that a case
// went through; the test does not compare those cases. Tagging watches targaryen without
// changing any of its answers.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);

let tags = new Set();

// Capture targaryen's expression classes as they register, to watch some of them.
const base = require('targaryen/lib/parser/statement/base');
const classes = new Map();
const register = base.Node.register.bind(base.Node);
base.Node.register = (type, Klass) => {
  classes.set(type, Klass);
  register(type, Klass);
};

const targaryen = require('targaryen');
const types = require('targaryen/lib/parser/types');
const stringMethods = require('targaryen/lib/parser/string-methods');

// targaryen's endsWith is `str.indexOf(s) + s.length === str.length`: wrong when `s` also
// occurs earlier ("abab".endsWith("ab")) or is longer than `str` by one ("b".endsWith("ab")).
const endsWith = stringMethods.endsWith;
stringMethods.endsWith = (str, substr) => {
  const answer = endsWith(str, substr);
  if (typeof substr === 'string' && answer !== str.endsWith(substr)) {
    tags.add('endsWith');
  }
  return answer;
};

// targaryen compares two objects by identity (JavaScript's ===); Kora refuses to compare
// them (an error, so false).
const Binary = classes.get('BinaryExpression');
const evaluateWith = Binary.prototype.evaluateWith;
Binary.prototype.evaluateWith = function (state, left, right) {
  const equality = ['==', '===', '!=', '!=='].includes(this.operator);
  if (equality && types.from(left) === 'Object' && types.from(right) === 'Object') {
    tags.add('object-equality');
  }
  return evaluateWith.call(this, state, left, right);
};

function run(c) {
  let db;
  try {
    db = targaryen.database(c.rules, c.data, c.now).as(c.auth);
  } catch (error) {
    return { valid: false, error: error.message };
  }
  const op = c.op;
  let result;
  if (op.kind === 'read') {
    result = db.read(op.path, { now: c.now, query: op.query });
  } else if (op.kind === 'set') {
    result = db.write(op.path, op.value, { now: c.now });
  } else {
    result = db.update(op.path, op.patch, c.now);
  }
  return { valid: true, allowed: result.allowed, info: result.info };
}

const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const answers = cases.map(c => {
  tags = new Set();
  let answer;
  try {
    answer = run(c);
  } catch (error) {
    answer = { valid: true, crashed: error.stack };
  }
  answer.tags = [...tags];
  return answer;
});
process.stdout.write(JSON.stringify(answers));

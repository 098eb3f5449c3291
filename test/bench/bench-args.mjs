/**
 * Command-line flags of the benchmarks: `--name value`. A whole-number flag
 * out of its range stops the run with one line naming the flag, the value and
 * what was expected.
 */
export function benchArgs(program) {
  const arg = (name, def) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : def;
  };
  const intArg = (name, def, min, max) => {
    const raw = arg(name, def);
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) {
      console.error(`${program}: --${name} is ${JSON.stringify(raw)}; expected a whole number from ${min} to ${max}`);
      process.exit(2);
    }
    return v;
  };
  return { arg, intArg };
}

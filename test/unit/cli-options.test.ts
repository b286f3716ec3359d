import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type OptionSpec, parseCommand, parseHostPort, UsageError } from '../../cli/options';

const SPECS: OptionSpec[] = [
  { name: 'listen', kind: 'hostport', default: '0.0.0.0:7400', help: '' },
  { name: 'rotate-max-rows', kind: 'int', default: 100, min: 1, help: '' },
  { name: 'gzip', kind: 'bool', default: false, help: '' },
  {
    name: 'when-full',
    kind: 'enum',
    values: ['drop-newest', 'drop-oldest'],
    default: 'drop-newest',
    help: '',
  },
  { name: 'policy-url', kind: 'string', help: '' },
];

function configFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'snowtap-cfg-'));
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('defaults apply when nothing is given', () => {
  const r = parseCommand([], SPECS, {});
  assert.deepEqual(r.options, {
    listen: '0.0.0.0:7400',
    'rotate-max-rows': 100,
    gzip: false,
    'when-full': 'drop-newest',
  });
});

test('flags win over env, env wins over the config file', () => {
  const file = configFile('c.yaml', 'rotate-max-rows: 5\ngzip: true\npolicy-url: http://file\n');
  const env = { SNOWTAP_ROTATE_MAX_ROWS: '7', SNOWTAP_POLICY_URL: 'http://env' };
  const r = parseCommand(['--config', file, '--policy-url=http://flag'], SPECS, env);
  assert.equal(r.options['rotate-max-rows'], 7);
  assert.equal(r.options.gzip, true);
  assert.equal(r.options['policy-url'], 'http://flag');
});

test('SNOWTAP_CONFIG names the config file; JSON works too', () => {
  const file = configFile('c.json', JSON.stringify({ 'when-full': 'drop-oldest' }));
  const r = parseCommand([], SPECS, { SNOWTAP_CONFIG: file });
  assert.equal(r.options['when-full'], 'drop-oldest');
});

test('unknown flags and config keys are errors naming the key, with a hint', () => {
  assert.throws(
    () => parseCommand(['--rotate-max-rowz', '1'], SPECS, {}),
    /unknown option '--rotate-max-rowz'/,
  );
  const file = configFile('c.yaml', 'rotateMaxRows: 5\n');
  assert.throws(
    () => parseCommand(['--config', file], SPECS, {}),
    (e: Error) =>
      e instanceof UsageError && /unknown key 'rotateMaxRows', use 'rotate-max-rows' instead/.test(e.message),
  );
});

test('bad values name the source and the problem', () => {
  assert.throws(
    () => parseCommand(['--rotate-max-rows', '0'], SPECS, {}),
    /--rotate-max-rows: must be at least 1/,
  );
  assert.throws(
    () => parseCommand([], SPECS, { SNOWTAP_ROTATE_MAX_ROWS: 'many' }),
    /SNOWTAP_ROTATE_MAX_ROWS: expected a number/,
  );
  assert.throws(
    () => parseCommand(['--when-full', 'block'], SPECS, {}),
    /must be one of drop-newest\|drop-oldest/,
  );
  assert.throws(() => parseCommand(['--listen', 'localhost'], SPECS, {}), /--listen: expected HOST:PORT/);
  assert.throws(() => parseCommand(['--listen'], SPECS, {}), /--listen needs a value/);
  assert.throws(() => parseCommand(['stray'], SPECS, {}), /unexpected argument 'stray'/);
  const file = configFile('c.yaml', '- a\n- b\n');
  assert.throws(() => parseCommand(['--config', file], SPECS, {}), /top level must be a mapping/);
  assert.throws(() => parseCommand(['--config', '/nonexistent/x.yaml'], SPECS, {}), /cannot read \(ENOENT\)/);
});

test('booleans: --gzip, --no-gzip, env spellings', () => {
  assert.equal(parseCommand(['--gzip'], SPECS, {}).options.gzip, true);
  assert.equal(parseCommand(['--no-gzip'], SPECS, { SNOWTAP_GZIP: 'yes' }).options.gzip, false);
  assert.equal(parseCommand([], SPECS, { SNOWTAP_GZIP: 'on' }).options.gzip, true);
});

test('positionals and --help', () => {
  const r = parseCommand(['a.fstrm', '--gzip', 'b.fstrm', '--help'], SPECS, {}, { positionals: true });
  assert.deepEqual(r.positionals, ['a.fstrm', 'b.fstrm']);
  assert.equal(r.help, true);
});

test('host:port forms', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:7400'), { host: '127.0.0.1', port: 7400 });
  assert.deepEqual(parseHostPort('[::1]:53'), { host: '::1', port: 53 });
  assert.deepEqual(parseHostPort(':9400'), { host: '0.0.0.0', port: 9400 });
  assert.throws(() => parseHostPort('h:70000'), /above 65535/);
});

test('--partition-by tenant, --max-open-tenants, --tenant-chunk-rate: flag, env, config key, defaults from the library, named errors', async () => {
  const { CONVERT_OPTIONS } = await import('../../cli/specs');
  const { partitionOptions } = await import('../../cli/shared');
  const { PARTITION_DEFAULTS } = await import('../../enricher/output/partition');
  assert.deepEqual(partitionOptions(parseCommand([], CONVERT_OPTIONS, {}).options), {
    partitionBy: 'none',
    maxOpenTenants: PARTITION_DEFAULTS.maxOpenTenants,
    tenantChunkRate: PARTITION_DEFAULTS.tenantChunkRate,
  });
  const dir = mkdtempSync(join(tmpdir(), 'tenant-cli-'));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'partition-by: tenant\nmax-open-tenants: 8\ntenant-chunk-rate: 2\n');
  assert.deepEqual(partitionOptions(parseCommand(['--config', file], CONVERT_OPTIONS, {}).options), {
    partitionBy: 'tenant',
    maxOpenTenants: 8,
    tenantChunkRate: 2,
  });
  const env = {
    SNOWTAP_PARTITION_BY: 'tenant',
    SNOWTAP_MAX_OPEN_TENANTS: '3',
    SNOWTAP_TENANT_CHUNK_RATE: '0.5',
  };
  assert.deepEqual(
    partitionOptions(parseCommand(['--max-open-tenants', '5'], CONVERT_OPTIONS, env).options),
    { partitionBy: 'tenant', maxOpenTenants: 5, tenantChunkRate: 0.5 },
  );
  assert.throws(() => parseCommand(['--partition-by', 'zone'], CONVERT_OPTIONS, {}), /--partition-by/);
  assert.throws(() => parseCommand(['--max-open-tenants', '0'], CONVERT_OPTIONS, {}), /--max-open-tenants/);
  assert.throws(
    () => parseCommand([], CONVERT_OPTIONS, { SNOWTAP_TENANT_CHUNK_RATE: '0' }),
    /TENANT_CHUNK_RATE/,
  );
});

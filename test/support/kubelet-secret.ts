// A Secret volume laid out the way the kubelet mounts it (its AtomicWriter): the files live in
// a timestamped directory `..2026_12_06_15_00_00.<n>`, `..data` is a symlink to it, and each key
// is a symlink `<key> -> ..data/<key>`. An update writes a new timestamped directory, points a
// temporary `..data_tmp` at it, renames that over `..data` (atomic) and removes the old
// directory: the path a process opened never changes, so a file watch sees nothing.
import fs from 'node:fs';
import path from 'node:path';

export class KubeletSecret {
  private version = 0;
  private current: string | null = null;

  constructor(
    readonly dir: string,
    files: Record<string, string | Buffer>,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    const first = this.write(files);
    fs.symlinkSync(first, path.join(dir, '..data'));
    for (const key of Object.keys(files)) fs.symlinkSync(path.join('..data', key), path.join(dir, key));
    this.current = first;
  }

  /** The path a process is given: `<dir>/<key>`. */
  path(key: string): string {
    return path.join(this.dir, key);
  }

  /** The kubelet's update: new timestamped directory, `..data_tmp`, rename over `..data`. */
  rotate(files: Record<string, string | Buffer>): void {
    const next = this.write(files);
    fs.symlinkSync(next, path.join(this.dir, '..data_tmp'));
    fs.renameSync(path.join(this.dir, '..data_tmp'), path.join(this.dir, '..data'));
    if (this.current !== null) fs.rmSync(path.join(this.dir, this.current), { recursive: true });
    this.current = next;
  }

  private write(files: Record<string, string | Buffer>): string {
    const name = `..2026_12_06_15_${String(this.version).padStart(2, '0')}_00.${1000 + this.version}`;
    this.version++;
    fs.mkdirSync(path.join(this.dir, name));
    for (const [key, content] of Object.entries(files))
      fs.writeFileSync(path.join(this.dir, name, key), content);
    return name;
  }
}

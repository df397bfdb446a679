// The Dockerfiles: pinned bases that match versions.yaml, a non-root user, a build context that
// holds what they copy, and their build steps working on a copy of the tree (no Docker daemon or
// registry is reachable here, so the steps run directly: the same npm commands, then the start
// command the image runs as its own smoke test).
import { existsSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { imageBuilds, setOverlayImages, buildImages } from '../../scripts/build-images.mjs';
import { exec, loadPins } from './gitops.js';
import { repoRoot } from '../harness/paths.js';

interface Instruction {
  op: string;
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}
interface Dockerfile {
  args: Record<string, string>;
  stages: Stage[];
}

/** A small Dockerfile reader: continuation lines, comments, global ARG defaults, stages. */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (pending === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    if (pending === '') start = i + 1;
    if (line.trimStart().startsWith('#')) return;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\w+)\s+(.*)$/s.exec(full);
    if (m) instructions.push({ op: (m[1] ?? '').toUpperCase(), args: (m[2] ?? '').trim(), line: start });
  });
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const [image, as, name] = ins.args.split(/\s+/);
      stages.push({
        from: expand(image ?? '', args),
        name: as?.toUpperCase() === 'AS' ? name : undefined,
        instructions: [],
      });
    } else if (stages.length === 0 && ins.op === 'ARG') {
      const [k, v] = ins.args.split('=');
      if (k && v !== undefined) args[k] = v;
    } else {
      stages.at(-1)?.instructions.push(ins);
    }
  }
  return { args, stages };
}

function expand(s: string, args: Record<string, string>): string {
  return s.replace(
    /\$\{(\w+)\}|\$(\w+)/g,
    (_m, a: string | undefined, b: string | undefined) => args[a ?? b ?? ''] ?? `<unset ${a ?? b}>`,
  );
}

const copySources = (ins: Instruction): string[] => {
  const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'));
  return words.slice(0, -1);
};
const fromOther = (ins: Instruction): boolean => /--from=/.test(ins.args);

/** .dockerignore in its allow-list form: `*`, then `!path` lines. */
function dockerignoreAllows(rel: string): boolean {
  const lines = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (lines[0] !== '*') throw new Error('.dockerignore: expected the allow-list form starting with "*"');
  return lines.slice(1).some((l) => {
    if (!l.startsWith('!')) throw new Error(`.dockerignore: ${l}: only "!path" lines may follow "*"`);
    const allowed = l.slice(1).replace(/\/$/, '');
    return rel === allowed || rel.startsWith(`${allowed}/`);
  });
}

const DOCKERFILES = ['images/tokenizer/Dockerfile', 'images/submitter/Dockerfile'];
const read = (f: string): Dockerfile => parseDockerfile(readFileSync(path.join(repoRoot, f), 'utf8'));

describe('Dockerfiles', () => {
  const pins = loadPins();

  it.each(DOCKERFILES)('%s: every base image is pinned to the versions.yaml tag', (file) => {
    const df = read(file);
    for (const stage of df.stages) {
      if (df.stages.some((s) => s.name === stage.from)) continue;
      const tag = /:([^/:@]+)$/.exec(stage.from)?.[1];
      expect(tag, `${file}: FROM ${stage.from} has no tag`).toBeDefined();
      expect(tag).not.toBe('latest');
      expect(stage.from.startsWith('docker.io/'), `${file}: FROM ${stage.from}: name the registry`).toBe(true);
      if (stage.from.startsWith('docker.io/library/node:'))
        expect(stage.from).toBe(`docker.io/library/node:${pins.nodeImage}`);
      else if (stage.from.startsWith('docker.io/library/debian:'))
        expect(stage.from).toBe(`docker.io/library/debian:${pins.nativeBuildImage}`);
      else expect(stage.from).toBe(`docker.io/rayproject/ray:${pins.ray}-py${pins.python.replace('.', '')}`);
    }
    expect(pins.nodeImage.split('.')[0]).toBe(pins.node);
  });

  it('the tokenizer image is the pinned Ray image with Node.js (and its libatomic1), bzip2, lbzip2 and the app; the submitter a slim Node image', () => {
    const tok = read('images/tokenizer/Dockerfile');
    expect(tok.stages.at(-1)?.from).toBe(`docker.io/rayproject/ray:${pins.ray}-py${pins.python.replace('.', '')}`);
    const runs =
      tok.stages
        .at(-1)
        ?.instructions.filter((i) => i.op === 'RUN')
        .map((i) => i.args)
        .join('\n') ?? '';
    expect(runs).toMatch(/apt-get install[^\n]*\bbzip2\b/);
    expect(runs).toMatch(/apt-get install[^\n]*\blbzip2\b/);
    // The Node.js binary copied in links libatomic.so.1, which the Ray CPU image lacks.
    expect(runs).toMatch(/apt-get install[^\n]*\blibatomic1\b/);
    expect(runs).toContain('/usr/local/bin/tokenize-wiki');
    const sub = read('images/submitter/Dockerfile');
    expect(sub.stages.at(-1)?.from).toMatch(/^docker\.io\/library\/node:.*-slim$/);
  });

  it.each(DOCKERFILES)('%s: the image runs as a non-root user', (file) => {
    const users =
      read(file)
        .stages.at(-1)
        ?.instructions.filter((i) => i.op === 'USER') ?? [];
    const last = users.at(-1)?.args;
    expect(last, `${file}: no USER in the final stage`).toBeDefined();
    expect(['root', '0', '0:0'].includes(last ?? '')).toBe(false);
  });

  it.each(DOCKERFILES)('%s: installs production dependencies only, without install scripts', (file) => {
    const final = read(file).stages;
    const prodInstall = final
      .flatMap((s) => s.instructions)
      .filter((i) => i.op === 'RUN' && i.args.includes('--omit=dev'));
    expect(prodInstall).toHaveLength(1);
    expect(prodInstall[0]?.args).toContain('npm ci --omit=dev --ignore-scripts');
  });

  it.each(DOCKERFILES)('%s: everything it copies from the context exists and passes .dockerignore', (file) => {
    for (const stage of read(file).stages) {
      for (const ins of stage.instructions.filter((i) => (i.op === 'COPY' || i.op === 'ADD') && !fromOther(i))) {
        expect(ins.op, `${file}:${ins.line}: use COPY`).toBe('COPY');
        for (const src of copySources(ins)) {
          expect(existsSync(path.join(repoRoot, src)), `${file}:${ins.line}: ${src} does not exist`).toBe(true);
          expect(
            dockerignoreAllows(src.replace(/\/$/, '')),
            `${file}:${ins.line}: ${src} is excluded by .dockerignore`,
          ).toBe(true);
        }
      }
    }
    for (const excluded of ['node_modules', 'dist', '.git', 'test', 'bench', 'apps'])
      expect(dockerignoreAllows(excluded), excluded).toBe(false);
  });

  it('scripts/build-images.mts passes exactly the build arguments the Dockerfiles declare, with their defaults', () => {
    for (const b of imageBuilds('docker.io/someone', 'abc123', pins)) {
      const df = read(b.dockerfile);
      expect(b.buildArgs, b.dockerfile).toEqual(df.args);
    }
  });
});

describe('the build steps, on a copy of the tree', () => {
  const scratch: string[] = [];
  afterAll(async () => {
    for (const d of scratch) await fs.rm(d, { recursive: true, force: true });
  });

  it('submitter image: build stage compiles, runtime stage installs production deps, and the CLI starts', async () => {
    const df = read('images/submitter/Dockerfile');
    const [build, runtime] = [df.stages[0], df.stages.at(-1)];
    if (!build || !runtime) throw new Error('expected a build stage and a runtime stage');
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-image-'));
    scratch.push(tmp);

    // Build stage: its COPYs, node_modules standing in for its `npm ci` (the repository's own,
    // same lock file), then its other RUN steps.
    const buildDir = path.join(tmp, 'build');
    await fs.mkdir(buildDir);
    for (const ins of build.instructions.filter((i) => i.op === 'COPY')) {
      const words = copySources(ins);
      const dest = ins.args.split(/\s+/).at(-1) ?? '.';
      for (const src of words) {
        const to =
          dest.endsWith('/') || dest === '.' || dest === './'
            ? path.join(buildDir, dest, path.basename(src))
            : path.join(buildDir, dest);
        await fs.cp(path.join(repoRoot, src), to, { recursive: true });
      }
    }
    await fs.symlink(path.join(repoRoot, 'node_modules'), path.join(buildDir, 'node_modules'));
    for (const ins of build.instructions.filter((i) => i.op === 'RUN' && !i.args.startsWith('npm ci'))) {
      const r = await exec('sh', ['-c', ins.args], { cwd: buildDir });
      expect(r.code, `images/submitter/Dockerfile:${ins.line}: ${ins.args}\n${r.stdout}${r.stderr}`).toBe(0);
    }

    // Runtime stage: package files, the production install exactly as written (minus the
    // cache cleanup, which would empty this machine's npm cache), dist from the build, bin.
    const appDir = path.join(tmp, 'app');
    await fs.mkdir(appDir);
    for (const f of ['package.json', 'package-lock.json'])
      await fs.copyFile(path.join(repoRoot, f), path.join(appDir, f));
    const install = runtime.instructions.find((i) => i.op === 'RUN' && i.args.includes('--omit=dev'));
    const npmCi =
      install?.args
        .split('&&')
        .map((s) => s.trim())
        .find((s) => s.startsWith('npm ci')) ?? '';
    const r = await exec('sh', ['-c', `${npmCi} --prefer-offline`], { cwd: appDir });
    expect(r.code, `${npmCi}\n${r.stderr.slice(-2000)}`).toBe(0);
    expect(existsSync(path.join(appDir, 'node_modules/typescript')), 'devDependencies were installed').toBe(false);
    expect(existsSync(path.join(appDir, 'node_modules/vitest'))).toBe(false);
    await fs.cp(path.join(buildDir, 'dist'), path.join(appDir, 'dist'), { recursive: true });
    await fs.cp(path.join(repoRoot, 'bin'), path.join(appDir, 'bin'), { recursive: true });

    // The image's own smoke test: `tokenize-wiki --help` (the symlinked launcher).
    const smoke = runtime.instructions.find((i) => i.op === 'RUN' && i.args.includes('tokenize-wiki --help'));
    expect(smoke, 'the runtime stage runs `tokenize-wiki --help`').toBeDefined();
    const help = await exec('node', [path.join(appDir, 'bin/tokenize-wiki.js'), '--help'], {
      cwd: os.tmpdir(),
      env: { ...process.env, NODE_ENV: 'production' },
    });
    expect(help.code, `tokenize-wiki --help: ${help.stderr.slice(-2000)}`).toBe(0);
    expect(help.stdout + help.stderr).toMatch(/submit/);
  }, 600_000); // two npm installs and a TypeScript build: minutes on a busy 2-core machine
});

describe('scripts/build-images.mts', () => {
  it('rewrites only the images field of an overlay, keeping comments and other images', () => {
    const before =
      '# keep me\nresources:\n  - ../../base\nimages:\n  - name: other\n    newTag: v1\n  - name: tokenize-wiki\n    newName: old/x\n    newTag: old\n';
    const builds = imageBuilds('registry.example.com/team', 'abc123', loadPins());
    const after = setOverlayImages(before, builds);
    expect(after).toContain('# keep me');
    expect(after).toContain('name: other');
    expect(after).toContain('newName: registry.example.com/team/tokenize-wiki\n    newTag: abc123');
    expect(after).toContain('newName: registry.example.com/team/tokenize-wiki-submitter');
    expect(after).not.toContain('old/x');
  });

  it('a dry run prints the docker commands with the pinned build arguments and the overlay it would write', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const { ZxHost } = await import('../../scripts/lib/host.js');
    const io = {
      host: new ZxHost(),
      out: (l: string) => out.push(l),
      err: (l: string) => err.push(l),
      env: {},
      repoRoot,
      now: () => 0,
    };
    const code = await buildImages(
      ['--registry', 'docker.io/someone', '--tag', '0123456789ab', '--overlay', 'dev', '--dry-run'],
      io,
    );
    expect(code, err.join('\n')).toBe(0);
    const pins = loadPins();
    const text = out.join('\n');
    expect(text).toContain(`--build-arg RAY_VERSION=${pins.ray}`);
    expect(text).toContain(`--build-arg NODE_IMAGE=${pins.nodeImage}`);
    expect(text).toContain('docker push docker.io/someone/tokenize-wiki:0123456789ab');
    expect(text).toContain('newTag: 0123456789ab');
    expect(text).toContain('apps/wiki-tokenizer/overlays/dev/kustomization.yaml');
  });

  it.each([
    [['--tag', 'x'], '--registry is required'],
    [['--registry', 'docker.io/someone', '--tag', 'latest'], 'immutable tag'],
    [['--registry', 'docker.io/someone', '--tag', 'prod'], 'immutable tag'],
    [['--registry', 'docker.io/someone', '--tag', 'v1.2.3', '--overlay', 'nope'], 'does not exist'],
    [['--registry', 'Not A Registry', '--tag', 'v1.2.3'], 'not a registry'],
  ])('bad usage %j exits 2 with one line naming the problem', async (argv, message) => {
    const err: string[] = [];
    const { ZxHost } = await import('../../scripts/lib/host.js');
    const io = {
      host: new ZxHost(),
      out: () => undefined,
      err: (l: string) => err.push(l),
      env: {},
      repoRoot,
      now: () => 0,
    };
    expect(await buildImages([...argv, '--dry-run'], io)).toBe(2);
    expect(err.join('\n')).toContain(message);
  });
});

/**
 * `npm run build:sdk`: builds the publishable packages, `@callchart/machines` and `@callchart/client` (which
 * needs the machines at run time and in its types), as ES modules with declarations, each staged in a
 * directory of its own with the package.json that is published. The workspace's package.json files keep
 * pointing at the sources, which the apps and the tests import through Vite and tsx; only the staged
 * copies point at built files.
 *
 *   npm run build:sdk                       builds dist/sdk/machines and dist/sdk/client
 *   npm run build:sdk -- --pack <dir>       also packs both into <dir> with `npm pack`
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { repoRoot } from './repoRoot.ts';

export const defaultOutDir = path.join(repoRoot, 'dist/sdk');

interface SourcePackage {
  name: string;
  version: string;
  description: string;
  license: string;
  exports: Record<string, string>;
  dependencies?: Record<string, string>;
}

interface SdkPackage {
  /** The workspace directory, relative to the repository. */
  dir: string;
  /** The staged directory's name under the output directory. */
  stage: string;
}

const machines: SdkPackage = { dir: 'machines', stage: 'machines' };
const client: SdkPackage = { dir: 'apps/client', stage: 'client' };

export interface BuiltSdk {
  machines: string;
  client: string;
}

async function readPackage(pkg: SdkPackage): Promise<SourcePackage> {
  return JSON.parse(await readFile(path.join(repoRoot, pkg.dir, 'package.json'), 'utf8')) as SourcePackage;
}

/** `./src/protocol.ts` -> `./protocol`: where a source entry's built files are in the staged package. */
function builtBase(entry: string): string {
  if (!entry.startsWith('./src/') || !entry.endsWith('.ts')) throw new Error(`export ${entry} is not a TypeScript file under src/`);
  return `./${entry.slice('./src/'.length, -'.ts'.length)}`;
}

const isRelativeTs = (specifier: string) => specifier.startsWith('.') && specifier.endsWith('.ts') && !specifier.endsWith('.d.ts');
const toJs = (specifier: string) => `${specifier.slice(0, -'.ts'.length)}.js`;

/**
 * `rewriteRelativeImportExtensions` rewrites `./x.ts` to `./x.js` in the JavaScript only; declaration
 * emit keeps `./x.ts`, which TypeScript itself reads but other tools do not. The declarations get the
 * same specifiers as the JavaScript.
 */
function declarationSpecifiersToJs(context: ts.TransformationContext): (node: ts.SourceFile | ts.Bundle) => ts.SourceFile | ts.Bundle {
  const { factory } = context;
  const specifier = (literal: ts.Expression | undefined) =>
    literal && ts.isStringLiteral(literal) && isRelativeTs(literal.text) ? factory.createStringLiteral(toJs(literal.text), true) : undefined;
  const visit = (node: ts.Node): ts.Node => {
    if (ts.isImportDeclaration(node)) {
      const next = specifier(node.moduleSpecifier);
      if (next) return factory.updateImportDeclaration(node, node.modifiers, node.importClause, next, node.attributes);
    }
    if (ts.isExportDeclaration(node)) {
      const next = specifier(node.moduleSpecifier);
      if (next) return factory.updateExportDeclaration(node, node.modifiers, node.isTypeOnly, node.exportClause, next, node.attributes);
    }
    if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      const next = specifier(node.argument.literal as ts.Expression);
      if (next) {
        return factory.updateImportTypeNode(
          node,
          factory.updateLiteralTypeNode(node.argument, next),
          node.attributes,
          node.qualifier,
          node.typeArguments ? ts.visitNodes(node.typeArguments, visit, ts.isTypeNode) : undefined,
          node.isTypeOf,
        );
      }
    }
    return ts.visitEachChild(node, visit, context);
  };
  return (node) => (ts.isSourceFile(node) ? ts.visitEachChild(node, visit, context) : node);
}

function formatDiagnostics(diagnostics: readonly ts.Diagnostic[]): string {
  return ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (file) => file,
    getCurrentDirectory: () => repoRoot,
    getNewLine: () => '\n',
  });
}

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

/**
 * Every package the built modules import must be one the manifest names: in the workspace a missing one
 * is still found, hoisted from a sibling's dependencies, but an installed package would fail to load.
 */
function undeclaredImports(program: ts.Program, rootDir: string, declared: Set<string>): string[] {
  const missing = new Set<string>();
  for (const file of program.getSourceFiles()) {
    if (!file.fileName.startsWith(`${rootDir}/`)) continue;
    for (const { fileName: specifier } of ts.preProcessFile(file.text, true, true).importedFiles) {
      if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
      if (!declared.has(packageOf(specifier))) missing.add(`${packageOf(specifier)} (${path.relative(repoRoot, file.fileName)})`);
    }
  }
  return [...missing];
}

/**
 * Compiles the package's exported entries, and every module they import, to `outDir`: the repository's
 * own compiler options (tsconfig.json), with emit on. `paths` points bare imports of sibling packages at
 * their built declarations, so the output refers to them by package name and never includes their sources.
 */
function compile(pkg: SdkPackage, source: SourcePackage, outDir: string, paths: Record<string, string[]>): void {
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(repoRoot, 'tsconfig.json'), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(formatDiagnostics([diagnostic]));
    },
  });
  if (!parsed) throw new Error('tsconfig.json could not be read');
  const rootDir = path.join(repoRoot, pkg.dir, 'src');
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: false,
    noEmitOnError: true,
    declaration: true,
    rewriteRelativeImportExtensions: true,
    // A published package's types must not depend on the Node typings the repository's own code uses.
    types: [],
    rootDir,
    outDir,
    paths,
    newLine: ts.NewLineKind.LineFeed,
  };
  const entries = Object.values(source.exports).map((entry) => path.join(repoRoot, pkg.dir, entry));
  const program = ts.createProgram({ rootNames: entries, options });
  const result = program.emit(undefined, undefined, undefined, false, { afterDeclarations: [declarationSpecifiersToJs] });
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics];
  if (diagnostics.length > 0 || result.emitSkipped) throw new Error(`${source.name} did not compile:\n${formatDiagnostics(diagnostics)}`);
  const missing = undeclaredImports(program, rootDir, new Set(Object.keys(source.dependencies ?? {})));
  if (missing.length > 0) throw new Error(`${source.name} imports packages its package.json does not depend on: ${missing.join(', ')}`);
}

/** The package.json that is published: the workspace's, pointing at the built files, without `private`. */
function publishedManifest(source: SourcePackage, dependencies: Record<string, string> | undefined): Record<string, unknown> {
  const exports: Record<string, unknown> = {};
  for (const [subpath, entry] of Object.entries(source.exports)) {
    const base = builtBase(entry);
    exports[subpath] = { types: `${base}.d.ts`, import: `${base}.js` };
  }
  exports['./package.json'] = './package.json';
  const main = builtBase(source.exports['.'] ?? '');
  return {
    name: source.name,
    version: source.version,
    description: source.description,
    license: source.license,
    type: 'module',
    sideEffects: false,
    exports,
    types: `${main}.d.ts`,
    files: ['**/*.js', '**/*.d.ts'],
    ...(dependencies ? { dependencies } : {}),
  };
}

async function stage(pkg: SdkPackage, outDir: string, paths: Record<string, string[]>, dependencies?: Record<string, string>): Promise<string> {
  const source = await readPackage(pkg);
  const dir = path.join(outDir, pkg.stage);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  compile(pkg, source, dir, paths);
  await writeFile(path.join(dir, 'package.json'), `${JSON.stringify(publishedManifest(source, dependencies ?? source.dependencies), null, 2)}\n`);
  await copyFile(path.join(repoRoot, pkg.dir, 'README.md'), path.join(dir, 'README.md'));
  await copyFile(path.join(repoRoot, 'LICENSE'), path.join(dir, 'LICENSE'));
  return dir;
}

/**
 * Builds both packages into `<outDir>/machines` and `<outDir>/client`. `outDir` must lie inside the
 * repository: the built declarations find xstate, zod and socket.io-client in its node_modules.
 */
export async function buildSdk({ outDir = defaultOutDir }: { outDir?: string } = {}): Promise<BuiltSdk> {
  const machinesSource = await readPackage(machines);
  const clientSource = await readPackage(client);
  const wanted = clientSource.dependencies?.[machinesSource.name];
  // The two are built and published together, so the client asks for exactly the machines built with it.
  if (wanted !== machinesSource.version) {
    throw new Error(`${clientSource.name} depends on ${machinesSource.name}@${String(wanted)}, but the workspace has ${machinesSource.version}`);
  }

  const machinesDir = await stage(machines, outDir, {});
  const machinesPaths: Record<string, string[]> = {};
  for (const [subpath, entry] of Object.entries(machinesSource.exports)) {
    machinesPaths[path.posix.join(machinesSource.name, subpath)] = [path.join(machinesDir, `${builtBase(entry)}.d.ts`)];
  }
  const clientDir = await stage(client, outDir, machinesPaths);
  return { machines: machinesDir, client: clientDir };
}

export interface PackedFile {
  path: string;
  size: number;
}

export interface Packed {
  name: string;
  /** The tarball's absolute path. */
  tarball: string;
  size: number;
  unpackedSize: number;
  files: PackedFile[];
}

/** `npm pack` of one staged directory into `destination`, with what npm reports about the tarball. */
export async function pack(stagedDir: string, destination: string): Promise<Packed> {
  // Run from the destination, outside the workspace, so npm treats the staged directory as a plain package.
  const { stdout } = await promisify(execFile)('npm', ['pack', stagedDir, '--json', '--pack-destination', destination], {
    cwd: destination,
  });
  const [report] = JSON.parse(stdout) as { name: string; filename: string; size: number; unpackedSize: number; files: PackedFile[] }[];
  if (!report) throw new Error(`npm pack ${stagedDir} reported nothing`);
  return {
    name: report.name,
    tarball: path.join(destination, report.filename),
    size: report.size,
    unpackedSize: report.unpackedSize,
    files: report.files.map(({ path: file, size }) => ({ path: file, size })),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const packIndex = process.argv.indexOf('--pack');
  const started = performance.now();
  const built = await buildSdk();
  console.log(`built ${built.machines} and ${built.client} in ${Math.round(performance.now() - started)} ms`);
  if (packIndex >= 0) {
    const destination = path.resolve(process.argv[packIndex + 1] ?? '.');
    await mkdir(destination, { recursive: true });
    for (const dir of [built.machines, built.client]) {
      const packed = await pack(dir, destination);
      console.log(`${packed.tarball}: ${packed.files.length} files, ${packed.size} bytes (${packed.unpackedSize} unpacked)`);
    }
  }
}

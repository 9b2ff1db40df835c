// A vite plugin that ships the licences of the third-party code in the bundle as
// dist/assets/licences-<hash>.txt and points the page's "Licences" link at it.
//
// The packages shipped are exactly the `dependencies` of web/package.json (build tools are
// devDependencies and never reach the browser). The plugin checks that claim against the
// bundle: a module from any other package fails the build, so the licences file cannot
// silently fall behind what is served.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

// Notices that a package's LICENSE file does not carry: world-atlas redistributes Natural
// Earth's data, whose terms are stated on Natural Earth's site rather than in the package.
const EXTRA_NOTICES = {
  'world-atlas':
    'The map outline is derived from Natural Earth (https://www.naturalearthdata.com/),\n' +
    'Admin 0 country boundaries at 1:110m. Natural Earth data is in the public domain:\n' +
    '"No permission is needed to use Natural Earth. Crediting the authors is unnecessary."\n' +
    '(https://www.naturalearthdata.com/about/terms-of-use/)',
};

// The placeholder index.html carries where the link goes; replaced with the hashed name.
export const LICENCES_PLACEHOLDER = '__LICENCES_TXT__';

function packageOf(moduleId) {
  const path = moduleId.replace(/\0/g, '').split('?')[0];
  const at = path.lastIndexOf('/node_modules/');
  if (at < 0) return null;
  const parts = path.slice(at + '/node_modules/'.length).split('/');
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

function licenceText(root, name) {
  const dir = join(root, 'node_modules', name);
  const file = readdirSync(dir)
    .sort()
    .find((entry) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(entry));
  if (!file) throw new Error(`licences: ${name} has no LICENSE file to ship`);
  return readFileSync(join(dir, file), 'utf8').trim();
}

export function buildLicencesText(root) {
  const own = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const names = Object.keys(own.dependencies ?? {}).sort();
  const sections = names.map((name) => {
    const meta = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8'));
    const head = `${meta.name} ${meta.version} (${meta.license})` + (meta.homepage ? `\n${meta.homepage}` : '');
    const extra = EXTRA_NOTICES[name] ? `\n\n${EXTRA_NOTICES[name]}` : '';
    return `${head}\n\n${licenceText(root, name)}${extra}`;
  });
  const rule = `\n\n${'-'.repeat(78)}\n\n`;
  return (
    'Third-party software in the station-api home page (/home/), with its licences.\n' +
    'station-api itself is MIT licensed: see LICENSE in its repository.' +
    rule +
    sections.join(rule) +
    '\n'
  );
}

export default function licences({ root, base = '/' }) {
  return {
    name: 'station-api:licences',
    // After vite's own HTML plugin, so index.html is already in the bundle to be patched.
    enforce: 'post',
    apply: 'build',
    generateBundle(_options, bundle) {
      const own = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
      const declared = new Set(Object.keys(own.dependencies ?? {}));
      for (const output of Object.values(bundle)) {
        if (output.type !== 'chunk') continue;
        for (const id of output.moduleIds ?? Object.keys(output.modules)) {
          const name = packageOf(id);
          if (name && !declared.has(name)) {
            this.error(`licences: ${id} comes from ${name}, which is not in web/package.json's dependencies`);
          }
        }
      }
      const reference = this.emitFile({
        type: 'asset',
        name: 'licences.txt',
        source: buildLicencesText(root),
      });
      const fileName = this.getFileName(reference);
      const html = bundle['index.html'];
      if (!html || !String(html.source).includes(LICENCES_PLACEHOLDER)) {
        this.error('licences: index.html has no licences link to fill in');
      }
      html.source = String(html.source).replace(LICENCES_PLACEHOLDER, base + fileName);
    },
  };
}

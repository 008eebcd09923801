// The editor's CodeMirror 6, bundled by esbuild (scripts/setup.sh runs
// `npm run build` in web/) into dist/codemirror.js, which build.rs embeds
// in the binary. It exposes window.BerthCM: make an editor, pick a
// language by file name.
import { EditorView, basicSetup } from 'codemirror';
import { EditorState } from '@codemirror/state';
import { keymap } from '@codemirror/view';
import { indentWithTab } from '@codemirror/commands';
import { StreamLanguage } from '@codemirror/language';
import { oneDark } from '@codemirror/theme-one-dark';
import { dockerFile } from '@codemirror/legacy-modes/mode/dockerfile';
import { shell } from '@codemirror/legacy-modes/mode/shell';
import { yaml } from '@codemirror/lang-yaml';
import { python } from '@codemirror/lang-python';
import { html } from '@codemirror/lang-html';
import { json } from '@codemirror/lang-json';
import { javascript } from '@codemirror/lang-javascript';

// The language of a file, from its name: [name, extension] or null.
function languageFor(name) {
  const base = name.split('/').pop().toLowerCase();
  const ext = base.includes('.') ? base.split('.').pop() : '';
  if (base === 'dockerfile' || base.startsWith('dockerfile.') || base.endsWith('.dockerfile') || base === 'containerfile') {
    return ['Dockerfile', StreamLanguage.define(dockerFile)];
  }
  if (ext === 'yml' || ext === 'yaml') return ['YAML', yaml()];
  if (ext === 'sh' || ext === 'bash' || base === '.profile' || base === '.bashrc' || base === '.ashrc') {
    return ['Shell', StreamLanguage.define(shell)];
  }
  if (ext === 'py') return ['Python', python()];
  if (ext === 'html' || ext === 'htm') return ['HTML', html()];
  if (ext === 'json') return ['JSON', json()];
  if (ext === 'js' || ext === 'mjs' || ext === 'cjs') return ['JavaScript', javascript()];
  if (ext === 'ts') return ['TypeScript', javascript({ typescript: true })];
  return null;
}

// A new editor in `parent` holding `doc`; `onChange()` after each edit,
// `onSave()` on Ctrl/Cmd+S.
function create(parent, doc, name, onChange, onSave) {
  const lang = languageFor(name);
  const extensions = [
    basicSetup,
    keymap.of([indentWithTab, { key: 'Mod-s', preventDefault: true, run: () => { onSave(); return true; } }]),
    oneDark,
    EditorView.updateListener.of((u) => { if (u.docChanged) onChange(); }),
  ];
  if (lang) extensions.push(lang[1]);
  const view = new EditorView({ parent, state: EditorState.create({ doc, extensions }) });
  view.berthLanguage = lang ? lang[0] : 'Plain text';
  return view;
}

window.BerthCM = { create, languageFor: (n) => { const l = languageFor(n); return l ? l[0] : 'Plain text'; } };

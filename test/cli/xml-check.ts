/**
 * A small well-formedness check of XML for the tests of `weft graph --format svg`: declarations,
 * comments, doctype, CDATA, elements with quoted attributes (no duplicates), entity references
 * (the five predefined and numeric ones), tags closed in order, one root element. Returns the
 * elements (name, attributes, text directly inside) for the test to look into; throws with the
 * offset on anything malformed.
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  text: string;
  children: XmlElement[];
  parent: XmlElement | null;
}

const NAME = /^[A-Za-z_:][A-Za-z0-9_:.-]*/;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(s: string, at: number): string {
  return s.replace(/&([^;&\s]*);?/g, (m: string, ref: string) => {
    if (!m.endsWith(';')) throw new Error(`XML: bare & at ${at}`);
    if (ref in ENTITIES) return ENTITIES[ref]!;
    const num = /^#(x[0-9a-fA-F]+|[0-9]+)$/.exec(ref);
    if (num === null) throw new Error(`XML: unknown entity &${ref}; at ${at}`);
    return String.fromCodePoint(num[1]!.startsWith('x') ? parseInt(num[1]!.slice(1), 16) : Number(num[1]));
  });
}

/** Parses the document; returns its root element and every element in document order. */
export function checkXml(text: string): { root: XmlElement; all: XmlElement[] } {
  let i = 0;
  let root: XmlElement | null = null;
  const all: XmlElement[] = [];
  const stack: XmlElement[] = [];
  const skipTo = (end: string, what: string): void => {
    const j = text.indexOf(end, i);
    if (j < 0) throw new Error(`XML: unterminated ${what} at ${i}`);
    i = j + end.length;
  };
  while (i < text.length) {
    if (text.startsWith('<?', i)) skipTo('?>', 'declaration');
    else if (text.startsWith('<!--', i)) skipTo('-->', 'comment');
    else if (text.startsWith('<![CDATA[', i)) {
      if (stack.length === 0) throw new Error(`XML: CDATA outside the root at ${i}`);
      const j = text.indexOf(']]>', i);
      if (j < 0) throw new Error(`XML: unterminated CDATA at ${i}`);
      stack[stack.length - 1]!.text += text.slice(i + 9, j);
      i = j + 3;
    } else if (text.startsWith('<!DOCTYPE', i)) {
      if (root !== null) throw new Error(`XML: doctype after the root at ${i}`);
      // Graphviz's doctype has no internal subset; one with [ ] is skipped to its end.
      const j = text.indexOf('>', i);
      const bracket = text.indexOf('[', i);
      if (bracket >= 0 && bracket < j) skipTo(']>', 'doctype');
      else skipTo('>', 'doctype');
    } else if (text.startsWith('</', i)) {
      const at = i;
      i += 2;
      const m = NAME.exec(text.slice(i));
      if (m === null) throw new Error(`XML: bad closing tag at ${at}`);
      i += m[0].length;
      while (/\s/.test(text[i] ?? '')) i++;
      if (text[i] !== '>') throw new Error(`XML: bad closing tag at ${at}`);
      i++;
      const open = stack.pop();
      if (open === undefined || open.name !== m[0]) throw new Error(`XML: </${m[0]}> at ${at} closes ${open === undefined ? 'nothing' : `<${open.name}>`}`);
    } else if (text[i] === '<') {
      const at = i;
      i++;
      const m = NAME.exec(text.slice(i));
      if (m === null) throw new Error(`XML: bad tag at ${at}`);
      i += m[0].length;
      const el: XmlElement = { name: m[0], attrs: {}, text: '', children: [], parent: stack[stack.length - 1] ?? null };
      for (;;) {
        const ws = /^\s*/.exec(text.slice(i))![0].length;
        i += ws;
        if (text.startsWith('/>', i) || text[i] === '>') break;
        if (ws === 0) throw new Error(`XML: attribute without space before it at ${i}`);
        const a = NAME.exec(text.slice(i));
        if (a === null) throw new Error(`XML: bad attribute at ${i}`);
        i += a[0].length;
        const eq = /^\s*=\s*/.exec(text.slice(i));
        if (eq === null) throw new Error(`XML: attribute ${a[0]} without a value at ${i}`);
        i += eq[0].length;
        const q = text[i];
        if (q !== '"' && q !== "'") throw new Error(`XML: unquoted value of ${a[0]} at ${i}`);
        const end = text.indexOf(q, i + 1);
        if (end < 0) throw new Error(`XML: unterminated value of ${a[0]} at ${i}`);
        const raw = text.slice(i + 1, end);
        if (raw.includes('<')) throw new Error(`XML: < in the value of ${a[0]} at ${i}`);
        if (a[0] in el.attrs) throw new Error(`XML: duplicate attribute ${a[0]} at ${i}`);
        el.attrs[a[0]] = decode(raw, i);
        i = end + 1;
      }
      if (el.parent === null) {
        if (root !== null) throw new Error(`XML: a second root element <${el.name}> at ${at}`);
        root = el;
      } else el.parent.children.push(el);
      all.push(el);
      if (text.startsWith('/>', i)) i += 2;
      else {
        i++;
        stack.push(el);
      }
    } else {
      const j = text.indexOf('<', i);
      const end = j < 0 ? text.length : j;
      const chunk = text.slice(i, end);
      if (stack.length === 0) {
        if (chunk.trim() !== '') throw new Error(`XML: text outside the root at ${i}`);
      } else stack[stack.length - 1]!.text += decode(chunk, i);
      i = end;
    }
  }
  if (stack.length > 0) throw new Error(`XML: <${stack[stack.length - 1]!.name}> is never closed`);
  if (root === null) throw new Error('XML: no root element');
  return { root, all };
}

/**
 * A JSON value as a tree that folds: objects and arrays are native <details>, so they open and close
 * with the keyboard and keep their state while the value under them changes.
 */

function isBranch(value: unknown): value is unknown[] | Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function Leaf({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span className="json-null">null</span>;
  if (typeof value === 'string') return <span className="json-string">{JSON.stringify(value)}</span>;
  if (typeof value === 'number') return <span className="json-number">{String(value)}</span>;
  if (typeof value === 'boolean') return <span className="json-boolean">{String(value)}</span>;
  return <span>{String(value)}</span>;
}

function Entry({ name, value, depth, openDepth }: { name: string; value: unknown; depth: number; openDepth: number }) {
  if (!isBranch(value)) {
    return (
      <li>
        <span className="json-key">{name}</span>: <Leaf value={value} />
      </li>
    );
  }
  const entries = Array.isArray(value) ? value.map((item, index) => [String(index), item] as const) : Object.entries(value);
  const shape = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  if (entries.length === 0) {
    return (
      <li>
        <span className="json-key">{name}</span>: <span className="json-meta">{Array.isArray(value) ? '[]' : '{}'}</span>
      </li>
    );
  }
  return (
    <li>
      <details open={depth < openDepth}>
        <summary>
          <span className="json-key">{name}</span> <span className="json-meta">{shape}</span>
        </summary>
        <ul>
          {entries.map(([key, item]) => (
            <Entry key={key} name={key} value={item} depth={depth + 1} openDepth={openDepth} />
          ))}
        </ul>
      </details>
    </li>
  );
}

/** `value`'s members as the top level of the tree; branches deeper than `openDepth` start folded. */
export function JsonTree({ value, label, openDepth = 1 }: { value: unknown; label: string; openDepth?: number }) {
  if (!isBranch(value)) {
    return (
      <p className="json-tree" aria-label={label}>
        <Leaf value={value} />
      </p>
    );
  }
  const entries = Array.isArray(value) ? value.map((item, index) => [String(index), item] as const) : Object.entries(value);
  if (entries.length === 0) return <p className="subtle">Empty.</p>;
  return (
    <ul className="json-tree" aria-label={label}>
      {entries.map(([key, item]) => (
        <Entry key={key} name={key} value={item} depth={0} openDepth={openDepth} />
      ))}
    </ul>
  );
}

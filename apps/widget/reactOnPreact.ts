/**
 * React's API on Preact's runtime, for the widget's build: the widget loads into other people's pages, where
 * its weight is theirs to pay, and React DOM alone was ~60 kB of its gzip size. Each key also maps its
 * subpaths (`react/jsx-runtime`, `react-dom/client`). The source stays React and is unit-tested as React; the
 * browser suite runs the built widget.
 */
export const reactOnPreact = {
  react: 'preact/compat',
  'react-dom': 'preact/compat',
} as const;

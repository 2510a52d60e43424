import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.tools/', '.data/', 'dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no I/O, no clocks, no node: modules.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'net', 'http', 'https', 'crypto', 'child_process'],
              message: 'workflows must stay deterministic: do I/O in activities',
            },
            {
              group: ['../activities/*', '../../activities/*', '../../activities/*/*'],
              allowTypeImports: true,
              message: 'workflows reference activities by type only (import type)',
            },
            {
              group: ['**/client/*', '**/worker/*'],
              message: 'workflows never import the client or the worker service',
            },
          ],
        },
      ],
    },
  },
  {
    // Layers import downwards only: activities (adapters, the lifecycles client) never reach up into the CLI or the
    // worker service; what they need is injected or lives in activities/ or workflows/ (pure modules).
    files: ['activities/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/client/*', '**/client/**', '**/worker/*', '**/worker/**'],
              message: 'activities never import client/ or worker/ (layers import downwards only)',
            },
          ],
        },
      ],
    },
  },
);

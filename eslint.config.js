// @ts-check
// The linter runs first in `npm test`. Besides the recommended rules it enforces the direction of
// imports described in the README's layout section: a wrong import fails CI.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** One restriction per layer: `group` lists what files in `files` may not import. */
const layer = (files, group, message) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ group, message, allowTypeImports: false }] }],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/generated/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  { files: ['**/*.js', '**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } } },
  // Leaves: they know nothing of the layers above them.
  layer(['src/entities/**'], ['../*', '!../config.js', '!../logger.js'], 'entities import only each other'),
  layer(['src/k8s/*.ts'], ['../*', '!../config.js', '!../logger.js'], 'k8s/ imports nothing but configuration and logging'),
  layer(['src/k8s/templates/**'], ['../../*', '!../../config.js', '!../../logger.js'], 'k8s/ imports nothing but configuration and logging'),
  layer(['src/mail/**'], ['../*', '!../config.js', '!../logger.js'], 'mail/ imports nothing but configuration and logging'),
  layer(['src/simulated/**'], ['../*'], 'the simulated cluster stands alone: it is a Kubernetes API server, reached only over HTTP'),
  layer(['src/migrations/**'], ['../*'], 'migrations stand alone'),
  layer(['src/errors.ts', 'src/logger.ts', 'src/config.ts', 'src/config-env.ts'], ['./*', '!./config.js', '!./config-env.js', '!./logger.js'], 'shared modules import no layer'),
  layer(
    ['src/db.ts'],
    ['./*.js', '!./config.js', '!./logger.js', './services/*', './graphql/*', './resolvers/*', './ws/*', './reconciler/*', './k8s/*', './mail/*', './simulated/*'],
    'db.ts knows entities and migrations only',
  ),
  // Services: the business rules, below every transport and driver.
  layer(
    ['src/services/**'],
    ['../graphql/*', '../resolvers/*', '../ws/*', '../reconciler/*', '../simulated/*', '../app.js', '../main.js'],
    'services/ import only entities, k8s, mail, db and the shared modules (resolvers, the WebSocket layer and drivers call services, not the reverse)',
  ),
  // Drivers and transports: they call services; none reaches into another.
  layer(
    ['src/reconciler/**'],
    ['../graphql/*', '../resolvers/*', '../ws/*', '../simulated/*', '../app.js', '../main.js'],
    'the reconciler is a driver: it uses services, k8s and entities',
  ),
  layer(
    ['src/resolvers/**'],
    ['../ws/*', '../reconciler/*', '../simulated/*', '../k8s/*', '../mail/*', '../db.js', '../app.js', '../main.js'],
    'resolvers reach the cluster, mail and the database through services',
  ),
  layer(
    ['src/graphql/**'],
    ['../ws/*', '../reconciler/*', '../simulated/*', '../k8s/*', '../mail/*', '../app.js', '../main.js'],
    'graphql/ is request wiring: it reaches the cluster and mail through services',
  ),
  layer(
    ['src/ws/**'],
    ['../resolvers/*', '../reconciler/*', '../simulated/*', '../k8s/*', '../mail/*', '../app.js', '../main.js'],
    'the WebSocket layer delivers operations: it uses graphql/ wiring and services',
  ),
  // The composition root loads the simulated cluster only with a dynamic import, when it is chosen.
  {
    files: ['src/app.ts', 'src/main.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['./simulated/*'], allowTypeImports: true, message: 'load the simulated cluster with a dynamic import, only when chosen' }] }],
    },
  },
);

// ESLint for clients/web (//clients/web:lint_test): the recommended rules of
// ESLint and typescript-eslint, plus the few this code relies on.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.mts"],
    rules: {
      "eqeqeq": "error",
      "no-console": ["error", { allow: ["error"] }],
      "prefer-const": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-explicit-any": "error",
    },
  },
);

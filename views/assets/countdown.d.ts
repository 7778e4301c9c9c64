// Imported `with { type: "file" }` (assets.routes.ts): the import is the file's path, not a module.
declare const path: string;
export default path;

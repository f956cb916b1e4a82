// libdfss for the tests that call it through ffi/ directly: the loaded library, or why it is not there (a test
// skips with that reason where the library was not built).
import { type DfssLibrary, loadDfss } from '../../ffi/dfss.js';
import { LibraryNotFoundError } from '../../src/errors.js';

function load(): DfssLibrary | string {
  try {
    return loadDfss();
  } catch (error) {
    if (error instanceof LibraryNotFoundError) return error.message;
    throw error;
  }
}

const loaded = load();
export const lib: DfssLibrary | null = typeof loaded === 'string' ? null : loaded;
export const notBuilt: string | false = typeof loaded === 'string' ? `libdfss.so is not built here: ${loaded}` : false;

/** The harness uses the library's xenstore client. */
export { Xenstore, XenstoreError } from '../../lib/xen/xenstore.js';

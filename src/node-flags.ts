// The V8 flags the controller runs with, wherever it runs: the image's ENTRYPOINT, the sandbox and the tests all start
// `node <these> dist/src/main.js` (a test checks that the Dockerfile and scripts/sandbox.sh say the same).
//
// --max-semi-space-size=8 (MiB): by default V8 sizes the young generation from the heap limit, which it derives from
// the machine's memory, and a burst of claims grows it to tens of MiB that stay committed. Capped at 8, the peak RSS of
// three 500-claim rounds went from 288-300 MiB to 201-213 MiB for the same CPU per claim within the noise (bench:burst,
// issue 13); subcommands (cluster-id, migrate, audit) are short-lived and do not need it.
export const CONTROLLER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

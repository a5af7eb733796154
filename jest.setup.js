/**
 * Jest setup (jest.config.js `setupFiles`): the test suites run stages on throwaway inputs and
 * must see them compute, so the stage memo is off unless NX_PTQ_STORE names a store. A test
 * that wants the memo sets NX_PTQ_STORE and deletes NX_PTQ_NO_MEMO; the nx/ptq processes the
 * tests spawn with `{ ...process.env }` inherit the setting.
 */
if (!process.env.NX_PTQ_STORE) process.env.NX_PTQ_NO_MEMO ??= '1';

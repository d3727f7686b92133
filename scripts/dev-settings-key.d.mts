/** LOCAL ONLY: the settings key for `npm start`, the demo and the tests; published, so it protects nothing. */
export const DEVELOPMENT_SETTINGS_ENCRYPTION_KEY: string;

import type { RuntimeProvider } from '../runtime/types.js'

/**
 * For unit tests of engine functions: a provider that has only the methods given (a stand-in, not an
 * engine); any other method throws, naming itself, so a test sees at once what an engine function
 * asked of the provider that it did not expect.
 */
export function stubProvider(methods: Partial<RuntimeProvider>): RuntimeProvider {
  const known: Partial<RuntimeProvider> = { name: 'stub', ...methods }
  return new Proxy(known, {
    get: (t, k) =>
      k in t
        ? t[k as keyof typeof t]
        : () => {
            throw new Error(`the stub provider has no ${String(k)}`)
          },
  }) as RuntimeProvider
}

// placeholder, replaced by the lead: starts the shared Temporal dev server
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}

/** Hosts enrolled through the admin API, ten requests at a time, named host-0000, host-0001, … (bench:ui and its markup probe). */
export async function addHosts(url: string, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, to - i) }, async (_, j) => {
        const name = `host-${String(i + j).padStart(4, "0")}`;
        const response = await fetch(`${url}/api/hosts`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ name, platform: "nixos" }),
        });
        if (response.status !== 201) throw new Error(`adding ${name}: ${response.status} ${await response.text()}`);
      }),
    );
  }
}

// Placeholder until the dashboard lands: proves the build and the asset serving.
document.querySelector("nf-app")!.textContent = "NixFleet";

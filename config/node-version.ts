// Imported first by every entry point: the platform needs Node 24 (installed by `npm install` as a devDependency).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `This platform needs Node.js 24 or newer; this is ${process.version}. Run it through npm (npm start, npm test), which uses the Node 24 that npm install puts in node_modules/.bin.`,
  );
  process.exit(1);
}

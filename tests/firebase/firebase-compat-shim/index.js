'use strict';
// `require('firebase')` for firebase-server: the namespaced API (firebase.initializeApp,
// app.database(), firebase.database.ServerValue) from the compat packages.
const appCompat = require('@firebase/app-compat');
require('@firebase/database-compat');
module.exports = appCompat.default || appCompat;

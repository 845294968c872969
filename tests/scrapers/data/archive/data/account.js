window.YTD.account.part0 = [
  {
    "account" : {
      "email" : "fan@example.com",
      "createdVia" : "web",
      "username" : "nnbot_fan",
      "accountId" : "123456",
      "createdAt" : "2012-01-01T10:00:00.000Z",
      "accountDisplayName" : "NN fan"
    }
  }
]
